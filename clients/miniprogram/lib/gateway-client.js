'use strict';

const { GatewayError } = require('./errors');
const { postGraphQL, dataOf, tokenErrorCode, isTokenRejection } = require('./transport');
const { createSessionStore } = require('./session-store');
const { createSession } = require('./session');
const { createVisibility } = require('./visibility');
const { defaultClientFacts, normalizeFacts } = require('./client-facts');
const { wxCall, isTimeout } = require('./wx-call');
const { checkUserInfoDetail, checkPhoneDetail } = require('./details');
const { checkProfile, uploadAvatar } = require('./profile');
const {
  LOGOUT,
  BIND_UNION_ID,
  BIND_PHONE_NUMBER,
  LOGIN_BY_PHONE_CODE,
  UPDATE_PROFILE,
  WEB_LOGIN_REQUEST,
  APPROVE_WEB_LOGIN,
} = require('./documents');
const { checkScene, webLoginRequestOf } = require('./web-login');

/** The default bound on wx.login, wx.checkSession and each request (milliseconds). */
const DEFAULT_TIMEOUT_MS = 15000;

const SESSION_EXPIRED_MESSAGE =
  'The WeChat session had expired, so the user is logged in again: fetch the user info again ' +
  '(wx.getUserInfo or the button) and call bindUnionId with the new detail; the one sent was ' +
  'sealed with the old session_key and cannot be decrypted.';

/**
 * createGatewayClient({ endpoint, app, wx?, storageKey?, client?, timeout?, avatarUploadUrl? })
 * → gw.
 *
 * @param {object} options
 * @param {string} options.endpoint the gateway's GraphQL URL, e.g. https://id.example.com/graphql
 * @param {string} options.app the app key the gateway knows this mini-program by
 * @param {object} [options.wx] the `wx` API object (default: the global `wx`); `uni` works too
 * @param {string} [options.storageKey] default `gateway.session`
 * @param {object} [options.client] overrides the `{ platform, channel, deviceParam }` facts
 * @param {number} [options.timeout] bound on wx.login, wx.checkSession and each request (ms)
 * @param {string} [options.avatarUploadUrl] default: the endpoint's `/graphql` → `/avatars`
 * @param {boolean} [options.documentHashes] default true: the SDK's own operations are sent
 *   by their SHA-256 (trusted documents), the text only when the gateway asks for it
 */
function createGatewayClient(options) {
  const config = checkOptions(options || {});
  const wx = config.wx;
  const target = {
    endpoint: config.endpoint,
    timeout: config.timeout,
    persisted: config.documentHashes ? { off: false, unknown: {} } : null,
  };
  const listeners = [];
  let facts = null;
  let last = null;

  function clientFacts() {
    if (!facts) facts = normalizeFacts(Object.assign(defaultClientFacts(wx), config.client));
    return facts;
  }

  /** Tells listeners when logged-in-ness or the account changed (not on a refresh). */
  function changed(state) {
    const now = { loggedIn: Boolean(state), accountId: state ? state.accountId : null };
    if (last && last.loggedIn === now.loggedIn && last.accountId === now.accountId) return;
    last = now;
    listeners.slice().forEach((listener) => callSafely(listener, now));
  }

  const store = createSessionStore(wx, config.storageKey);
  const visibility = createVisibility(wx);
  const session = createSession(
    { wx, target, app: config.app, facts: clientFacts, store, visibility },
    changed
  );
  const initial = session.load();
  last = { loggedIn: Boolean(initial), accountId: initial ? initial.accountId : null };

  /**
   * One authorized round trip `send(token)` → answer, with one renewal on the gateway's 401
   * (a proxy's plain 401 is an HTTP_ERROR, not a reason to spend a refresh token); no token:
   * NOT_LOGGED_IN. A logout meanwhile means no login for this call.
   */
  async function authorizedAnswer(send, mayLogin) {
    const p = session.policy(mayLogin);
    let token = await session.accessToken(p);
    if (!token) throw notLoggedIn();
    let answer = await send(token);
    if (isTokenRejection(answer)) {
      token = await session.tokenAfterRejection(token, p);
      if (!token) throw notLoggedIn();
      answer = await send(token);
    }
    if (isTokenRejection(answer)) throw rejectedToken(answer);
    return answer;
  }

  /** An authorized GraphQL operation: its answer, data checked. */
  async function graphQL(operation, mayLogin) {
    const answer = await authorizedAnswer((token) => postGraphQL(wx, target, operation, token), mayLogin);
    dataOf(answer);
    return answer;
  }

  function authorized(operation, mayLogin) {
    return graphQL(operation, mayLogin).then((answer) => answer.body.data);
  }

  /** GraphQL as the logged-in user: logs in, refreshes and re-logs in as needed. */
  function request(operation) {
    if (!operation || typeof operation.query !== 'string') {
      return Promise.reject(new GatewayError('INVALID_INPUT', 'request needs { query }'));
    }
    return authorized(operation, true);
  }

  async function bindUnionId(detail) {
    checkUserInfoDetail(detail);
    if (!(await wechatSessionAlive(wx, config.timeout))) throw await sessionExpired();
    const input = {
      encryptedData: detail.encryptedData,
      iv: detail.iv,
      rawData: detail.rawData || null,
      signature: detail.signature || null,
      client: clientFacts(),
    };
    let data;
    try {
      data = await request({ query: BIND_UNION_ID, variables: { input } });
    } catch (error) {
      if (error.code === 'SESSION_EXPIRED') throw await sessionExpired();
      throw error;
    }
    const result = data.bindUnionId;
    session.adoptAccount(result.account.id);
    return { account: result.account, merged: result.merged, linked: result.linked };
  }

  /** Logs in again (a fresh session_key), then the SESSION_EXPIRED error to reject with. */
  async function sessionExpired() {
    await session.login();
    return new GatewayError('SESSION_EXPIRED', SESSION_EXPIRED_MESSAGE);
  }

  /**
   * Adding a way in needs a recent login: an older session is answered
   * REAUTHENTICATION_REQUIRED before WeChat sees the code, so a fresh login (wx.login +
   * loginByCode) and the same code once more.
   */
  async function bindPhoneNumber(detail) {
    checkPhoneDetail(detail);
    const input = { code: detail.code, client: clientFacts() };
    const operation = { query: BIND_PHONE_NUMBER, variables: { input } };
    let data;
    try {
      data = await request(operation);
    } catch (error) {
      if (error.code !== 'REAUTHENTICATION_REQUIRED') throw error;
      await session.login();
      data = await request(operation);
    }
    const result = data.bindPhoneNumber;
    session.adoptAccount(result.account.id);
    return { account: result.account, linked: result.linked };
  }

  /**
   * The one-tap "log in with my phone number": makes sure the silent login happened (the
   * caller is its account), then `loginByPhoneCode` with the button's code. A phone nobody
   * holds is bound to this account, which gets new tokens; a phone on another account
   * rejects PHONE_CONFLICT and the login stays as it was.
   */
  async function loginWithPhone(detail) {
    checkPhoneDetail(detail);
    const started = session.logouts();
    const input = { app: config.app, code: detail.code, client: clientFacts() };
    const operation = { query: LOGIN_BY_PHONE_CODE, variables: { input } };
    let answer;
    try {
      answer = await graphQL(operation, true);
    } catch (error) {
      if (error.code !== 'REAUTHENTICATION_REQUIRED') throw error;
      await session.login();
      answer = await graphQL(operation, true);
    }
    const result = answer.body.data.loginByPhoneCode;
    session.adoptLogin(result, answer, started);
    return { account: result.account, isNewAccount: result.isNewAccount };
  }

  /**
   * Sets the nickname and/or the avatar: `avatarTempPath` (from `<button
   * open-type="chooseAvatar">`) is uploaded with wx.uploadFile first, then `updateProfile`.
   */
  async function updateProfile(profile) {
    const input = checkProfile(profile || {});
    input.client = clientFacts();
    if (profile.avatarTempPath) {
      input.avatar = await uploadAvatar(wx, config, profile.avatarTempPath, authorizedAnswer);
    }
    const data = await request({ query: UPDATE_PROFILE, variables: { input } });
    return { account: data.updateProfile.account };
  }

  /**
   * Scan to log in: what asks to log in with the `scene` of the scanned code (the site, the
   * browser's address and user agent, the mini-program); the browser then shows SCANNED.
   * Logs in first when needed: the person confirming is this mini-program's user.
   */
  async function webLoginRequest(scene) {
    const data = await request({ query: WEB_LOGIN_REQUEST, variables: { scene: checkScene(scene) } });
    return webLoginRequestOf(data.webLoginRequest);
  }

  /**
   * Scan to log in: the person's answer for the website login whose code carries `scene`
   * (`options.scene` of the page the code opened, URL-decoded). `{ approve: false }` denies.
   * An unknown, expired or used code rejects WEB_LOGIN_EXPIRED.
   */
  async function confirmWebLogin(scene, opts) {
    const approve = !(opts && opts.approve === false);
    const input = { scene: checkScene(scene), approve, client: clientFacts() };
    const data = await request({ query: APPROVE_WEB_LOGIN, variables: { input } });
    return webLoginRequestOf(data.approveWebLogin);
  }

  /**
   * Ends this session (or, with `everywhere`, every session of the account) at the gateway
   * and forgets the local state in any case. Wins over a login or refresh in flight: its
   * answer is dropped (a fresh session ended) and nothing begun before logs in again. Never
   * logs in to log out: a state that is already dead resolves `{ revokedSessions: 0 }`; an
   * unreachable gateway rejects (the local state is forgotten all the same).
   */
  async function logout(opts) {
    const everywhere = Boolean(opts && opts.everywhere);
    session.cut();
    if (!session.load()) {
      session.forget();
      return { revokedSessions: 0 };
    }
    const variables = { everywhere, client: clientFacts() };
    try {
      const data = await authorized({ query: LOGOUT, variables }, false);
      return { revokedSessions: data.logout.revokedSessions };
    } catch (error) {
      if (isDeadLogin(error)) return { revokedSessions: 0 };
      throw error;
    } finally {
      session.forget();
    }
  }

  function onChange(listener) {
    if (typeof listener !== 'function') throw new TypeError('onChange needs a function');
    listeners.push(listener);
    return function unsubscribe() {
      const at = listeners.indexOf(listener);
      if (at >= 0) listeners.splice(at, 1);
    };
  }

  return {
    login: () => session.login(),
    request,
    bindUnionId,
    bindPhoneNumber,
    loginWithPhone,
    updateProfile,
    webLoginRequest,
    confirmWebLogin,
    logout,
    isLoggedIn: () => session.isLoggedIn(),
    onChange,
  };
}

function checkOptions(options) {
  if (typeof options.endpoint !== 'string' || !options.endpoint) {
    throw new TypeError('createGatewayClient needs `endpoint` (the gateway GraphQL URL)');
  }
  if (typeof options.app !== 'string' || !options.app) {
    throw new TypeError('createGatewayClient needs `app` (the app key of this mini-program)');
  }
  const wx = options.wx || globalWx();
  if (!wx || typeof wx.request !== 'function') {
    throw new TypeError('createGatewayClient found no `wx`: pass { wx } (or uni-app\'s uni)');
  }
  const timeout = options.timeout === undefined ? DEFAULT_TIMEOUT_MS : options.timeout;
  if (typeof timeout !== 'number' || !(timeout > 0) || timeout > 2147483647) {
    throw new TypeError('createGatewayClient: `timeout` is a number of milliseconds (> 0)');
  }
  return {
    endpoint: options.endpoint,
    app: options.app,
    wx,
    storageKey: options.storageKey || 'gateway.session',
    client: options.client || {},
    timeout,
    uploadTimeout: Math.max(timeout, 60000),
    documentHashes: options.documentHashes !== false,
    avatarUploadUrl: options.avatarUploadUrl || options.endpoint.replace(/\/graphql\/?$/, '') + '/avatars',
  };
}

/** The mini-program's global `wx`, when there is one. */
function globalWx() {
  return typeof wx !== 'undefined' ? wx : undefined; // eslint-disable-line no-undef
}

/** wx.checkSession: true while WeChat still holds the session_key valid; TIMEOUT when stuck. */
function wechatSessionAlive(wx, timeoutMs) {
  return wxCall(wx, 'checkSession', {}, timeoutMs).then(
    () => true,
    (failure) => {
      if (!isTimeout(failure)) return false;
      throw new GatewayError('TIMEOUT', 'wx.checkSession did not answer in time', { cause: failure });
    }
  );
}

function notLoggedIn() {
  return new GatewayError('NOT_LOGGED_IN', 'Not logged in');
}

function rejectedToken(answer) {
  const code = tokenErrorCode(answer);
  return new GatewayError(code, 'The gateway refused the access token again after renewing it', {
    status: 401,
    errors: answer.body && answer.body.errors,
  });
}

/** The login was already over at the gateway: nothing to revoke. */
function isDeadLogin(error) {
  return ['NOT_LOGGED_IN', 'TOKEN_EXPIRED', 'INVALID_TOKEN'].indexOf(error.code) >= 0;
}

/** A listener's exception must not break the SDK; report it outside the promise chain. */
function callSafely(listener, event) {
  try {
    listener(event);
  } catch (error) {
    setTimeout(() => {
      throw error;
    }, 0);
  }
}

module.exports = { createGatewayClient };
