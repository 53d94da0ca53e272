'use strict';

const { GatewayError } = require('./errors');
const { singleFlight } = require('./flight');
const { postGraphQL, dataOf } = require('./transport');
const { stateFrom } = require('./session-store');
const { wxCall, errMsgOf, isTimeout } = require('./wx-call');
const { LOGIN_BY_CODE, REFRESH_TOKEN, LOGOUT } = require('./documents');

/** Refresh when the access token has less than this left (requests take time). */
const REFRESH_MARGIN_MS = 60 * 1000;
/** Never send a refresh token this close to its expiry: it would be refused on arrival. */
const REFRESH_TOKEN_MARGIN_MS = 10 * 1000;

/**
 * The login state machine: silent login (`wx.login` → `loginByCode`), refresh, and re-login,
 * each in a single flight so any number of concurrent callers share one round trip.
 *
 * - Every state is dated by the gateway's clock (see session-store's `stateFrom`).
 * - `generation` counts forgets and logouts: a refresh answered after one is dropped.
 *   `logouts` counts logouts alone: a login answered after one is dropped (its fresh session
 *   is ended at the gateway), and an operation that began before one never logs in: logout
 *   wins over whatever was in flight.
 * - No refresh while the app is hidden (`wx.onAppHide`/`onAppShow`): a refresh waits for the
 *   app to show. One whose answer was lost while the app was (or went) hidden is not resent:
 *   the gateway may have rotated the token already and, after its grace window, would take
 *   the resent one for a stolen one and revoke the session. The token is dropped instead and,
 *   once the app shows, a fresh silent login (`wx.login`) replaces the state.
 *
 * @param {object} ctx `{ wx, target, app, facts, store, visibility }`; `facts()` gives the client
 *   facts; `visibility` is `{ whenVisible(), hides(), visible() }`
 * @param {(state: object|null) => void} changed called after every save or forget
 */
function createSession(ctx, changed) {
  const { wx, target, store, visibility } = ctx;
  let generation = 0; // bumped by forget() and cut(): a refresh answered after one is dropped
  let logouts = 0; // bumped by cut(): what began before a logout never logs in

  /** POST an operation without a token: its answer, data checked (or reject). */
  function anonymous(operation) {
    return postGraphQL(wx, target, operation).then((answer) => {
      dataOf(answer);
      return answer;
    });
  }

  function remember(state) {
    const saved = store.save(state);
    changed(saved);
    return saved;
  }

  function forget() {
    generation += 1;
    store.clear();
    changed(null);
  }

  /** Logout began: whatever is in flight from before must not log anyone in. */
  function cut() {
    generation += 1;
    logouts += 1;
  }

  /** What the operation began in: `{ mayLogin, since }` (see `mayLogIn`). */
  function policy(mayLogin) {
    return { mayLogin: Boolean(mayLogin), since: logouts };
  }

  function mayLogIn(p) {
    return p.mayLogin && p.since === logouts;
  }

  /**
   * Stores a LoginSuccess that `answer` carried, unless a logout came since `started`: then
   * the fresh session is ended at the gateway (best effort) and NOT_LOGGED_IN rejects.
   */
  function adoptLogin(success, answer, started) {
    if (started !== logouts) {
      endQuietly(success.accessToken);
      throw new GatewayError('NOT_LOGGED_IN', 'Logged out while logging in');
    }
    remember(stateFrom(success, answer));
  }

  function endQuietly(accessToken) {
    const variables = { everywhere: false, client: ctx.facts() };
    postGraphQL(wx, target, { query: LOGOUT, variables }, accessToken).then(
      () => {},
      () => {}
    );
  }

  const login = singleFlight(async () => {
    const started = logouts;
    const code = await wxLoginCode(wx, target.timeout);
    const input = { app: ctx.app, code, client: ctx.facts() };
    const answer = await anonymous({ query: LOGIN_BY_CODE, variables: { input } });
    const result = answer.body.data.loginByCode;
    adoptLogin(result, answer, started);
    return { account: result.account, isNewAccount: result.isNewAccount };
  });

  /**
   * Single flight: waits for the app to show, then refreshes the stored refresh token (or,
   * when it may have been spent, logs in afresh). Resolves true when there is a new state,
   * false when there was nothing usable (no state, expired, or refused: then forgotten).
   */
  const renew = singleFlight(async () => {
    await visibility.whenVisible();
    const state = store.load();
    if (state && state.refreshToken === '') return loginInstead();
    if (!refreshUsable(state)) {
      if (state) forget();
      return false;
    }
    const started = generation;
    const hidesAtStart = visibility.hides();
    const interrupted = () => !visibility.visible() || visibility.hides() !== hidesAtStart;
    const operation = {
      query: REFRESH_TOKEN,
      variables: { refreshToken: state.refreshToken, client: ctx.facts() },
    };
    let answer;
    try {
      answer = await refreshOnceMore(() => anonymous(operation), interrupted);
    } catch (error) {
      if (isRefused(error)) {
        if (started === generation) forget();
        return false;
      }
      if (!(isLost(error) && interrupted())) throw error;
      if (started !== generation) return false;
      store.save(Object.assign({}, store.load() || state, { refreshToken: '' }));
      return loginInstead();
    }
    if (started === generation) remember(stateFrom(answer.body.data.refreshToken, answer));
    return true;
  });

  /** The refresh token may be spent: once the app shows, a fresh silent login. */
  async function loginInstead() {
    await visibility.whenVisible();
    await login();
    return true;
  }

  /** The stored access token after a renewal; logs in when there is none and `p` allows it. */
  async function tokenAfterRenewal(p) {
    await renew();
    const state = store.load();
    if (state || !mayLogIn(p)) return state && p.since === logouts ? state.accessToken : null;
    await login();
    return store.load().accessToken;
  }

  /**
   * A live access token: logs in (when `p` allows) when there is no state, refreshes when it
   * expires within a minute. Null when there is none and no login is allowed.
   */
  async function accessToken(p) {
    const state = store.load();
    if (!state) {
      if (!mayLogIn(p)) return null;
      await login();
      return store.load().accessToken;
    }
    if (state.expiresAt - REFRESH_MARGIN_MS > Date.now()) return state.accessToken;
    return tokenAfterRenewal(p);
  }

  /**
   * The gateway refused `rejected` (401): use a token someone renewed meanwhile, else renew
   * once (refresh, or forget and log in again when `p` allows).
   */
  async function tokenAfterRejection(rejected, p) {
    const state = store.load();
    if (state && state.accessToken !== rejected) return state.accessToken;
    return tokenAfterRenewal(p);
  }

  /** Record the account a bind answered with (a merge can change it). */
  function adoptAccount(accountId) {
    const state = store.load();
    if (state && accountId && state.accountId !== accountId) {
      remember(Object.assign({}, state, { accountId }));
    }
  }

  function isLoggedIn() {
    const state = store.load();
    return Boolean(state) && state.refreshExpiresAt > Date.now();
  }

  return {
    login,
    forget,
    cut,
    policy,
    adoptLogin,
    logouts: () => logouts,
    accessToken,
    tokenAfterRejection,
    adoptAccount,
    isLoggedIn,
    load: store.load,
  };
}

function refreshUsable(state) {
  return (
    Boolean(state) &&
    Boolean(state.refreshToken) &&
    state.refreshExpiresAt - REFRESH_TOKEN_MARGIN_MS > Date.now()
  );
}

/** The gateway refused the refresh token itself (spent, revoked, expired, malformed). */
function isRefused(error) {
  return error.typename === 'RefreshTokenError' || error.typename === 'InvalidInputError';
}

/** No answer (or none in time), or a proxy's 5xx: the request may have reached the gateway. */
function isLost(error) {
  return (
    error.code === 'NETWORK_ERROR' ||
    error.code === 'TIMEOUT' ||
    (error.code === 'HTTP_ERROR' && error.status >= 500)
  );
}

/**
 * Runs `call`; when its answer was lost while the app stayed visible, runs it once more. For
 * refreshToken this resends the same refresh token, which the gateway's grace window accepts
 * even if the first one arrived. Lost with the app hidden meanwhile: no resend (the caller
 * logs in afresh instead).
 */
async function refreshOnceMore(call, interrupted) {
  try {
    return await call();
  } catch (error) {
    if (!isLost(error) || interrupted()) throw error;
    return call();
  }
}

/** `wx.login` → its code; TIMEOUT when it hangs, WX_LOGIN_FAILED when it fails. */
async function wxLoginCode(wx, timeoutMs) {
  let result;
  try {
    result = await wxCall(wx, 'login', timeoutMs ? { timeout: timeoutMs } : {}, timeoutMs);
  } catch (failure) {
    if (isTimeout(failure)) {
      throw new GatewayError('TIMEOUT', 'wx.login did not answer in time: ' + errMsgOf(failure), {
        cause: failure,
      });
    }
    throw new GatewayError('WX_LOGIN_FAILED', 'wx.login failed: ' + errMsgOf(failure), {
      cause: failure,
    });
  }
  if (!result || !result.code) {
    throw new GatewayError('WX_LOGIN_FAILED', 'wx.login gave no code: ' + errMsgOf(result));
  }
  return result.code;
}

module.exports = { createSession, REFRESH_MARGIN_MS };
