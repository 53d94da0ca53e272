// Type declarations for wechat-identity-gateway-miniprogram.

/** The facts the gateway records with every login and mutation (risk control). */
export interface ClientFacts {
  /** e.g. ios, android, devtools, windows, mac. */
  platform: string;
  /** Install or launch channel (default: the launch scene). */
  channel?: string | null;
  /** Opaque device facts (default: model; system; WeChat version). */
  deviceParam?: string | null;
}

/** What a failed mini-program API call gives `fail`. */
export interface WxFailure {
  errMsg: string;
  errno?: number;
}

/**
 * The callback-style API the SDK uses: the real `wx` (miniprogram-api-typings), Taro's `Taro`,
 * uni-app's `uni`, or a test double. Only the members the SDK calls, typed so that each of
 * those platforms' own declarations is assignable (a promise returned as well is handled).
 */
export interface WxLike {
  login(options: {
    timeout?: number;
    success?(res: { code: string; errMsg?: string }): void;
    fail?(err: WxFailure): void;
  }): unknown;
  request(options: {
    url: string;
    method?: 'POST';
    header?: Record<string, string>;
    data?: Record<string, any>;
    dataType?: 'json';
    timeout?: number;
    success?(res: { statusCode: number; data?: unknown; header?: Record<string, any> }): void;
    fail?(err: WxFailure): void;
  }): unknown;
  checkSession(options: { success?(res?: unknown): void; fail?(err: WxFailure): void }): unknown;
  getStorageSync(key: string): any;
  setStorageSync(key: string, value: any): void;
  removeStorageSync(key: string): void;
  /** For updateProfile's avatar (wx.uploadFile, multipart). */
  uploadFile?(options: {
    url: string;
    filePath: string;
    name: string;
    header?: Record<string, string>;
    timeout?: number;
    success?(res: { statusCode: number; data?: unknown; header?: Record<string, any> }): void;
    fail?(err: WxFailure): void;
  }): unknown;
  /** App hidden / shown: no refresh while hidden. */
  onAppHide?(listener: (res?: any) => void): void;
  onAppShow?(listener: (res?: any) => void): void;
  getDeviceInfo?(): { platform?: string; model?: string; system?: string };
  getSystemInfoSync?(): { platform?: string; model?: string; system?: string; version?: string };
  getAppBaseInfo?(): { version?: string };
  getLaunchOptionsSync?(): { scene?: number };
}

export interface GatewayClientOptions {
  /** The gateway's GraphQL URL as a whole, e.g. `https://id.example.com/graphql`. */
  endpoint: string;
  /** The app key the gateway knows this mini-program by (e.g. `shop-mp`). */
  app: string;
  /** Default: the global `wx`. */
  wx?: WxLike;
  /** The one storage key of the login state. Default `gateway.session`. */
  storageKey?: string;
  /** Overrides (some of) the default client facts. */
  client?: Partial<ClientFacts>;
  /**
   * Bound in milliseconds on `wx.login`, `wx.checkSession` and each request (default 15000;
   * an avatar upload gets at least 60000). A stuck call rejects with `TIMEOUT`.
   */
  timeout?: number;
  /** Where updateProfile uploads an avatar. Default: the endpoint with `/graphql` → `/avatars`. */
  avatarUploadUrl?: string;
  /**
   * Default true: the SDK's own operations go by their SHA-256 (Apollo's
   * `extensions.persistedQuery`, the gateway's trusted documents) without the text; the text
   * follows only when the gateway does not know the hash. `false`: always the text.
   */
  documentHashes?: boolean;
}

export interface GraphQLOperation<V = Record<string, unknown>> {
  query: string;
  variables?: V;
  operationName?: string;
}

export interface AccountRef {
  /** The gateway's opaque account id. */
  id: string;
}

export interface LoginResult {
  account: AccountRef;
  isNewAccount: boolean;
}

export interface BindUnionIdResult {
  /** The account you now are (a merge can change it). */
  account: AccountRef;
  merged: boolean;
  linked: boolean;
}

export interface BindPhoneNumberResult {
  account: AccountRef;
  /** False when the phone was already linked. */
  linked: boolean;
}

/** What `wx.getUserInfo` or `<button open-type="getUserInfo">`'s `detail` gives. */
export interface UserInfoDetail {
  errMsg?: string;
  encryptedData: string;
  iv: string;
  rawData?: string;
  signature?: string;
  userInfo?: unknown;
}

/** The `detail` of `<button open-type="getPhoneNumber">` (or `getRealtimePhoneNumber`). */
export interface PhoneNumberDetail {
  errMsg: string;
  code?: string;
  /** WeChat's error number on a failure (e.g. 1400001: the app's quota is used up). */
  errno?: number;
}

/** What updateProfile sets: a nickname (`<input type="nickname">`), an avatar, or both. */
export interface ProfileUpdate {
  /** At most 64 characters, no control characters; `''` clears it. */
  nickname?: string;
  /** The temporary file path `<button open-type="chooseAvatar">` gives (`detail.avatarUrl`). */
  avatarTempPath?: string;
}

export interface UpdateProfileResult {
  account: AccountRef & { nickname: string | null; avatarUrl: string | null };
}

/** A website asking to log in by scan: show it before asking the person to confirm. */
export interface WebLoginRequest {
  /** SCANNED while it waits for the answer; APPROVED or DENIED after confirmWebLogin. */
  status: 'WAITING' | 'SCANNED' | 'APPROVED' | 'DENIED' | 'EXPIRED';
  /** The mini-program whose code was scanned. */
  app: { key: string; name: string };
  /** The site that asks (its origin), when its browser said. */
  origin: string | null;
  /** The address the browser asks from. */
  ip: string | null;
  /** The browser that asks. */
  userAgent: string | null;
  requestedAt: string;
  expiresAt: string;
}

export interface LoginStateChange {
  loggedIn: boolean;
  accountId: string | null;
}

export interface GatewayClient {
  /** Silent login: wx.login → loginByCode (one flight for concurrent callers). */
  login(): Promise<LoginResult>;
  /** GraphQL as the logged-in user; logs in, refreshes and re-logs in as needed. */
  request<T = any, V = Record<string, unknown>>(operation: GraphQLOperation<V>): Promise<T>;
  /** Links the unionid; rejects SESSION_EXPIRED (ask for the user info again) when the WeChat session is gone. */
  bindUnionId(detail: UserInfoDetail): Promise<BindUnionIdResult>;
  /** Links the phone number (on an older session: logs in again, then the same code once more); a refused button rejects USER_DENIED without a call. */
  bindPhoneNumber(detail: PhoneNumberDetail): Promise<BindPhoneNumberResult>;
  /**
   * Log in with the phone button: the silent login first (its account is the caller), then
   * `loginByPhoneCode`. A refusal rejects USER_DENIED, another button failure
   * PHONE_UNAVAILABLE (with `errno`), a phone on another account PHONE_CONFLICT.
   */
  loginWithPhone(detail: PhoneNumberDetail): Promise<LoginResult>;
  /** Uploads the avatar (wx.uploadFile) when given, then `updateProfile`. */
  updateProfile(profile: ProfileUpdate): Promise<UpdateProfileResult>;
  /**
   * Scan to log in: what asks to log in with the scanned code's `scene` (which site, from
   * where); the browser's status becomes SCANNED. Rejects WEB_LOGIN_EXPIRED for a dead code.
   */
  webLoginRequest(scene: string): Promise<WebLoginRequest>;
  /**
   * Scan to log in: approve (default) or deny (`{ approve: false }`) the website login whose
   * code carries `scene` (`options.scene` of the page, URL-encoded or not). Rejects
   * WEB_LOGIN_EXPIRED for an unknown, expired or already answered code.
   */
  confirmWebLogin(scene: string, options?: { approve?: boolean }): Promise<WebLoginRequest>;
  /** Ends this session (or every session) and forgets the local state in any case; wins over a login in flight. */
  logout(options?: { everywhere?: boolean }): Promise<{ revokedSessions: number }>;
  isLoggedIn(): boolean;
  /** Called when logged-in-ness or the account changes; returns an unsubscribe function. */
  onChange(listener: (change: LoginStateChange) => void): () => void;
}

// BEGIN GENERATED: the gateway's ErrorCode enum (npm run error-codes); do not edit
export type GatewayServerErrorCode =
  | 'INVALID_INPUT'
  | 'UNKNOWN_APP'
  | 'UNSUPPORTED_APP_KIND'
  | 'INVALID_CODE'
  | 'CODE_USED'
  | 'RISK_BLOCKED'
  | 'RATE_LIMITED'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_ERROR'
  | 'APP_MISCONFIGURED'
  | 'NOT_LOGGED_IN'
  | 'INVALID_REFRESH_TOKEN'
  | 'REFRESH_TOKEN_REUSED'
  | 'INVALID_STATE'
  | 'SNAPSHOT_USER'
  | 'INVALID_ENCRYPTED_DATA'
  | 'WATERMARK_MISMATCH'
  | 'OPENID_MISMATCH'
  | 'SIGNATURE_MISMATCH'
  | 'SESSION_EXPIRED'
  | 'NO_UNIONID'
  | 'PHONE_CONFLICT'
  | 'INVALID_CREDENTIALS'
  | 'WEAK_PASSWORD'
  | 'USERNAME_TAKEN'
  | 'CREDENTIAL_EXISTS'
  | 'IDENTITY_CONFLICT'
  | 'THROTTLED'
  | 'TEMPORARILY_UNAVAILABLE'
  | 'NOT_FOUND'
  | 'NO_PASSWORD'
  | 'LAST_IDENTITY'
  | 'NOT_ENTITLED'
  | 'ACCOUNT_DISABLED'
  | 'REAUTHENTICATION_REQUIRED'
  | 'TOO_EXPENSIVE'
  | 'CONTENT_REJECTED'
  | 'IMAGE_TOO_LARGE'
  | 'INVALID_IMAGE'
  | 'WEB_LOGIN_EXPIRED'
  | 'WEB_LOGIN_PENDING'
  | 'WEB_LOGIN_DENIED'
  | 'WEB_LOGIN_NOT_BOUND';
// END GENERATED

/**
 * Codes of GraphQL errors' `extensions.code`: a refused token (401), a lost database, and a
 * trusted-only gateway refusing a document that is not listed (`UNTRUSTED_DOCUMENT`: add your
 * own `request` documents to the gateway's manifest). `PERSISTED_QUERY_NOT_FOUND` is handled
 * by the SDK (it sends the text) and does not reach you for its own operations.
 */
export type GatewayExtensionErrorCode =
  | 'TOKEN_EXPIRED'
  | 'INVALID_TOKEN'
  | 'UNAVAILABLE'
  | 'UNTRUSTED_DOCUMENT'
  | 'PERSISTED_QUERY_NOT_FOUND';

/** The SDK's own codes. */
export type SdkErrorCode =
  | 'NETWORK_ERROR'
  | 'HTTP_ERROR'
  | 'GRAPHQL_ERROR'
  | 'TIMEOUT'
  | 'WX_LOGIN_FAILED'
  | 'USER_DENIED'
  | 'PHONE_UNAVAILABLE'
  | 'UPLOAD_FAILED'
  | 'SESSION_EXPIRED'
  | 'NOT_LOGGED_IN'
  | 'INVALID_INPUT';

export type GatewayErrorCode = GatewayServerErrorCode | GatewayExtensionErrorCode | SdkErrorCode;

export class GatewayError extends Error {
  constructor(code: string, message: string, extra?: Record<string, unknown>);
  readonly name: 'GatewayError';
  /** Stable, machine-readable reason: a gateway ErrorCode or one of the SDK's own. */
  code: GatewayErrorCode;
  /** HTTP status, when the gateway answered. */
  status?: number;
  /** The `__typename` of a typed union failure, e.g. `ConflictError`. */
  typename?: string;
  /** The GraphQL errors, for GRAPHQL_ERROR and extensions codes. */
  errors?: unknown[];
  field?: string | null;
  retryAfterSeconds?: number | null;
  /** WeChat's error number, for PHONE_UNAVAILABLE. */
  errno?: number;
  /** WeChat's errMsg, for PHONE_UNAVAILABLE. */
  errMsg?: string;
}

export function isGatewayError(value: unknown): value is GatewayError;

export function createGatewayClient(options: GatewayClientOptions): GatewayClient;
