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

/** The callback-style API the SDK uses: `wx`, uni-app's `uni`, or a test double. */
export interface WxLike {
  login(options: { success(res: { code: string; errMsg?: string }): void; fail(err: { errMsg: string }): void }): void;
  request(options: {
    url: string;
    method?: string;
    header?: Record<string, string>;
    data?: unknown;
    dataType?: string;
    timeout?: number;
    success(res: { statusCode: number; data: unknown; header?: Record<string, string> }): void;
    fail(err: { errMsg: string }): void;
  }): void;
  checkSession(options: { success(res?: unknown): void; fail(err: { errMsg: string }): void }): void;
  getStorageSync(key: string): any;
  setStorageSync(key: string, value: any): void;
  removeStorageSync(key: string): void;
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
  /** wx.request timeout in milliseconds. */
  timeout?: number;
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

/** The `detail` of `<button open-type="getPhoneNumber">`. */
export interface PhoneNumberDetail {
  errMsg: string;
  code?: string;
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
  /** Ends this session (or every session) and forgets the local state in any case. */
  logout(options?: { everywhere?: boolean }): Promise<{ revokedSessions: number }>;
  isLoggedIn(): boolean;
  /** Called when logged-in-ness or the account changes; returns an unsubscribe function. */
  onChange(listener: (change: LoginStateChange) => void): () => void;
}

export type GatewayErrorCode =
  | 'NETWORK_ERROR'
  | 'HTTP_ERROR'
  | 'GRAPHQL_ERROR'
  | 'WX_LOGIN_FAILED'
  | 'USER_DENIED'
  | 'SESSION_EXPIRED'
  | 'NOT_LOGGED_IN'
  | 'TOKEN_EXPIRED'
  | 'INVALID_TOKEN'
  | 'INVALID_INPUT'
  | (string & {});

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
}

export function isGatewayError(value: unknown): value is GatewayError;

export function createGatewayClient(options: GatewayClientOptions): GatewayClient;
