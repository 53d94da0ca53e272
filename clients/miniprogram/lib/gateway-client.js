'use strict';

const { GatewayError } = require('./errors');
const { postGraphQL, dataOf, tokenErrorCode } = require('./transport');
const { createSessionStore } = require('./session-store');
const { createSession } = require('./session');
const { defaultClientFacts, normalizeFacts } = require('./client-facts');
const { wxCall, isOk } = require('./wx-call');
const { LOGOUT, BIND_UNION_ID, BIND_PHONE_NUMBER } = require('./documents');

const SESSION_EXPIRED_MESSAGE =
  'The WeChat session had expired, so the user is logged in again: fetch the user info again ' +
  '(wx.getUserInfo or the button) and call bindUnionId with the new detail; the one sent was ' +
  'sealed with the old session_key and cannot be decrypted.';

/**
 * createGatewayClient({ endpoint, app, wx?, storageKey?, client?, timeout? }) → gw.
 *
 * @param {object} options
 * @param {string} options.endpoint the gateway's GraphQL URL, e.g. https://id.example.com/graphql
 * @param {string} options.app the app key the gateway knows this mini-program by
 * @param {object} [options.wx] the `wx` API object (default: the global `wx`); `uni` works too
 * @param {string} [options.storageKey] default `gateway.session`
 * @param {object} [options.client] overrides the `{ platform, channel, deviceParam }` facts
 * @param {number} [options.timeout] wx.request timeout in milliseconds
 */
function createGatewayClient(options) {
  const config = checkOptions(options || {});
  const wx = config.wx;
  const target = { endpoint: config.endpoint, timeout: config.timeout };
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
  const session = createSession(
    { wx, target, app: config.app, facts: clientFacts, store },
    changed
  );
  const initial = session.load();
  last = { loggedIn: Boolean(initial), accountId: initial ? initial.accountId : null };

  /** One authorized round trip, with one renewal on a 401; null token: NOT_LOGGED_IN. */
  async function authorized(operation, mayLogin) {
    let token = await session.accessToken(mayLogin);
    if (!token) throw notLoggedIn();
    let answer = await postGraphQL(wx, target, operation, token);
    if (answer.status === 401) {
      token = await session.tokenAfterRejection(token, mayLogin);
      if (!token) throw notLoggedIn();
      answer = await postGraphQL(wx, target, operation, token);
    }
    if (answer.status === 401) throw rejectedToken(answer);
    return dataOf(answer);
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
    if (!(await wechatSessionAlive(wx))) throw await sessionExpired();
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
   * Ends this session (or, with `everywhere`, every session of the account) at the gateway
   * and forgets the local state in any case. Never logs in to log out: a state that is
   * already dead resolves `{ revokedSessions: 0 }`; an unreachable gateway rejects (the
   * local state is forgotten all the same).
   */
  async function logout(opts) {
    const everywhere = Boolean(opts && opts.everywhere);
    if (!session.load()) return { revokedSessions: 0 };
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
  return {
    endpoint: options.endpoint,
    app: options.app,
    wx,
    storageKey: options.storageKey || 'gateway.session',
    client: options.client || {},
    timeout: options.timeout,
  };
}

/** The mini-program's global `wx`, when there is one. */
function globalWx() {
  return typeof wx !== 'undefined' ? wx : undefined; // eslint-disable-line no-undef
}

/** wx.checkSession: true while WeChat still holds the session_key valid. */
function wechatSessionAlive(wx) {
  return wxCall(wx, 'checkSession', {}).then(
    () => true,
    () => false
  );
}

function checkUserInfoDetail(detail) {
  if (detail && detail.errMsg && !isOk(detail.errMsg)) {
    throw new GatewayError('USER_DENIED', 'The user did not share the user info: ' + detail.errMsg);
  }
  if (!detail || !detail.encryptedData || !detail.iv) {
    throw new GatewayError('INVALID_INPUT', 'bindUnionId needs the detail of wx.getUserInfo');
  }
}

function checkPhoneDetail(detail) {
  if (!detail || !isOk(detail.errMsg)) {
    const why = detail && detail.errMsg ? detail.errMsg : 'no detail';
    throw new GatewayError('USER_DENIED', 'The user did not share the phone number: ' + why);
  }
  if (!detail.code) {
    throw new GatewayError(
      'INVALID_INPUT',
      'The getPhoneNumber detail has no code (it needs base library 2.21.2 or later)'
    );
  }
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
