'use strict';

/** The GraphQL documents the SDK sends (see the gateway's schema.graphql). */

const ERROR = '... on Error { code message }';
const TOKENS = 'accessToken refreshToken expiresAt refreshExpiresAt account { id }';

const LOGIN_BY_CODE = `mutation GatewayLoginByCode($input: LoginByCodeInput!) {
  loginByCode(input: $input) {
    __typename
    ... on LoginSuccess { ${TOKENS} isNewAccount }
    ${ERROR}
  }
}`;

const REFRESH_TOKEN = `mutation GatewayRefreshToken($refreshToken: String!, $client: ClientInput) {
  refreshToken(refreshToken: $refreshToken, client: $client) {
    __typename
    ... on RefreshSuccess { ${TOKENS} }
    ${ERROR}
  }
}`;

const LOGOUT = `mutation GatewayLogout($everywhere: Boolean!, $client: ClientInput) {
  logout(everywhere: $everywhere, client: $client) {
    __typename
    ... on LogoutSuccess { revokedSessions }
    ${ERROR}
  }
}`;

const BIND_UNION_ID = `mutation GatewayBindUnionId($input: BindUnionIdInput!) {
  bindUnionId(input: $input) {
    __typename
    ... on BindUnionIdSuccess { account { id } merged linked }
    ${ERROR}
  }
}`;

const BIND_PHONE_NUMBER = `mutation GatewayBindPhoneNumber($input: BindPhoneNumberInput!) {
  bindPhoneNumber(input: $input) {
    __typename
    ... on BindPhoneNumberSuccess { account { id } linked }
    ${ERROR}
  }
}`;

/** The phone button's code signs the silent login's account up with that phone (bearer). */
const LOGIN_BY_PHONE_CODE = `mutation GatewayLoginByPhoneCode($input: LoginByPhoneCodeInput!) {
  loginByPhoneCode(input: $input) {
    __typename
    ... on LoginSuccess { ${TOKENS} isNewAccount }
    ${ERROR}
  }
}`;

/** `avatar`: what the upload endpoint answered (the uploaded picture's id). */
const UPDATE_PROFILE = `mutation GatewayUpdateProfile($input: UpdateProfileInput!) {
  updateProfile(input: $input) {
    __typename
    ... on UpdateProfileSuccess { account { id nickname avatarUrl } }
    ${ERROR}
  }
}`;

/** What a scanned website login asks (scan to log in); the browser then shows SCANNED. */
const WEB_LOGIN_REQUEST = `query GatewayWebLoginRequest($scene: String!) {
  webLoginRequest(scene: $scene) {
    __typename
    ... on WebLoginRequest { status origin ip userAgent requestedAt expiresAt app { key name } }
    ${ERROR}
  }
}`;

/** The person's answer to a scanned website login: approve or deny. */
const APPROVE_WEB_LOGIN = `mutation GatewayApproveWebLogin($input: ApproveWebLoginInput!) {
  approveWebLogin(input: $input) {
    __typename
    ... on WebLoginRequest { status origin ip userAgent requestedAt expiresAt app { key name } }
    ${ERROR}
  }
}`;

module.exports = {
  LOGIN_BY_CODE,
  REFRESH_TOKEN,
  LOGOUT,
  BIND_UNION_ID,
  BIND_PHONE_NUMBER,
  LOGIN_BY_PHONE_CODE,
  UPDATE_PROFILE,
  WEB_LOGIN_REQUEST,
  APPROVE_WEB_LOGIN,
};
