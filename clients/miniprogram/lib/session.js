'use strict';

const { GatewayError } = require('./errors');
const { singleFlight } = require('./flight');
const { postGraphQL, dataOf } = require('./transport');
const { stateFrom } = require('./session-store');
const { wxCall, errMsgOf } = require('./wx-call');
const { LOGIN_BY_CODE, REFRESH_TOKEN } = require('./documents');

/** Refresh when the access token has less than this left (clocks drift, requests take time). */
const REFRESH_MARGIN_MS = 60 * 1000;
/** Never send a refresh token this close to its expiry: it would be refused on arrival. */
const REFRESH_TOKEN_MARGIN_MS = 10 * 1000;

/**
 * The login state machine: silent login (`wx.login` → `loginByCode`), refresh, and re-login,
 * each in a single flight so any number of concurrent callers share one round trip.
 *
 * @param {object} ctx `{ wx, target, app, facts, store }`; `facts()` gives the client facts
 * @param {(state: object|null) => void} changed called after every save or forget
 */
function createSession(ctx, changed) {
  const { wx, target, store } = ctx;
  let generation = 0; // bumped by forget(): a refresh answered after it is dropped

  /** POST an operation without a token and return its data (or reject). */
  function anonymous(operation) {
    return postGraphQL(wx, target, operation).then(dataOf);
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

  const login = singleFlight(async () => {
    const code = await wxLoginCode(wx);
    const input = { app: ctx.app, code, client: ctx.facts() };
    const result = (await anonymous({ query: LOGIN_BY_CODE, variables: { input } })).loginByCode;
    remember(stateFrom(result));
    return { account: result.account, isNewAccount: result.isNewAccount };
  });

  /** Trade the refresh token; one retry with the same token when the answer was lost. */
  async function refreshWith(refreshToken) {
    const started = generation;
    const operation = {
      query: REFRESH_TOKEN,
      variables: { refreshToken, client: ctx.facts() },
    };
    const data = await retryOnceIfLost(() => anonymous(operation));
    if (started === generation) remember(stateFrom(data.refreshToken));
  }

  /**
   * Single flight: refresh the stored refresh token. Resolves true when refreshed, false when
   * there was nothing usable (no state, expired, or refused: the state is then forgotten).
   */
  const renew = singleFlight(async () => {
    const state = store.load();
    if (!refreshUsable(state)) {
      if (state) forget();
      return false;
    }
    try {
      await refreshWith(state.refreshToken);
      return true;
    } catch (error) {
      if (!isRefused(error)) throw error;
      forget();
      return false;
    }
  });

  /** The stored access token after a renewal; with `mayLogin`, logs in when there is none. */
  async function tokenAfterRenewal(mayLogin) {
    await renew();
    const state = store.load();
    if (state || !mayLogin) return state ? state.accessToken : null;
    await login();
    return store.load().accessToken;
  }

  /**
   * A live access token: logs in (with `mayLogin`) when there is no state, refreshes when it
   * expires within a minute. Null only without `mayLogin`.
   */
  async function accessToken(mayLogin) {
    const state = store.load();
    if (!state) {
      if (!mayLogin) return null;
      await login();
      return store.load().accessToken;
    }
    if (state.expiresAt - REFRESH_MARGIN_MS > Date.now()) return state.accessToken;
    return tokenAfterRenewal(mayLogin);
  }

  /**
   * The gateway refused `rejected` (401): use a token someone renewed meanwhile, else renew
   * once (refresh, or forget and log in again with `mayLogin`).
   */
  async function tokenAfterRejection(rejected, mayLogin) {
    const state = store.load();
    if (state && state.accessToken !== rejected) return state.accessToken;
    return tokenAfterRenewal(mayLogin);
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
    accessToken,
    tokenAfterRejection,
    adoptAccount,
    isLoggedIn,
    load: store.load,
  };
}

function refreshUsable(state) {
  return Boolean(state) && state.refreshExpiresAt - REFRESH_TOKEN_MARGIN_MS > Date.now();
}

/** The gateway refused the refresh token itself (spent, revoked, expired, malformed). */
function isRefused(error) {
  return error.typename === 'RefreshTokenError' || error.typename === 'InvalidInputError';
}

/** No answer, or a proxy's 5xx: the request may have reached the gateway. */
function isLost(error) {
  return error.code === 'NETWORK_ERROR' || (error.code === 'HTTP_ERROR' && error.status >= 500);
}

/**
 * Runs `call`; when its answer was lost, runs it once more. For refreshToken this resends the
 * same refresh token, which the gateway's grace window accepts even if the first one arrived.
 */
async function retryOnceIfLost(call) {
  try {
    return await call();
  } catch (error) {
    if (!isLost(error)) throw error;
    return call();
  }
}

/** `wx.login` → its code, or a WX_LOGIN_FAILED GatewayError. */
async function wxLoginCode(wx) {
  let result;
  try {
    result = await wxCall(wx, 'login', {});
  } catch (failure) {
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
