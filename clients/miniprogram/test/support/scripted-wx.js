'use strict';

/**
 * A `wx` whose answers are scripted (no gateway): `answer(field, body, header, options)` gives
 * what wx.request's `success` gets (`{ statusCode, data, header? }`), `'fail'` for a failure
 * (`request:fail`), `'hang'` for a request that never answers, or a promise of either.
 * `wx.calls` lists the top-level fields asked, `wx.sent` the requests themselves.
 *
 * App lifecycle: `wx.hide()` / `wx.show()` call the onAppHide / onAppShow listeners.
 */
const { queryOf } = require('./fake-wx');

const HOUR = 3600 * 1000;

/** The real clock, whatever a test does to Date.now (a skewed phone clock). */
const realNow = Date.now.bind(Date);
const iso = (ms) => new Date(ms).toISOString();

/** A LoginSuccess (or RefreshSuccess) dated by the server's (real) clock. */
function tokens(n) {
  return {
    __typename: n.typename || 'LoginSuccess',
    accessToken: `at-${n.id}`,
    refreshToken: `rt-${n.id}`,
    expiresAt: iso(realNow() + (n.lifetime || HOUR)),
    refreshExpiresAt: iso(realNow() + 24 * HOUR),
    isNewAccount: false,
    account: { id: n.account || 'acc-1' },
  };
}

function scriptedWx(answer, extra) {
  const storage = new Map();
  const hideListeners = [];
  const showListeners = [];
  const wx = {
    calls: [],
    sent: [],
    aborted: 0,
    logins: 0,
    login({ success }) {
      wx.logins += 1;
      setImmediate(() => success({ code: `code-${wx.logins}` }));
    },
    checkSession: ({ success }) => setImmediate(success),
    request(options) {
      const query = queryOf(options.data);
      const field = /\{\s*(\w+)/.exec(query.replace(/^[^{]*/, ''))[1];
      wx.calls.push(field);
      wx.sent.push({ field, header: options.header, data: options.data, timeout: options.timeout });
      const task = { abort: () => (wx.aborted += 1) };
      setImmediate(() => {
        Promise.resolve(answer(field, options.data, options.header, options)).then((res) => {
          if (res === 'hang') return;
          if (res === 'fail') options.fail({ errMsg: 'request:fail' });
          else options.success(res);
        });
      });
      return task;
    },
    getStorageSync: (key) => (storage.has(key) ? storage.get(key) : ''),
    setStorageSync: (key, value) => storage.set(key, value),
    removeStorageSync: (key) => storage.delete(key),
    onAppHide: (listener) => hideListeners.push(listener),
    onAppShow: (listener) => showListeners.push(listener),
    hide: () => hideListeners.forEach((listener) => listener()),
    show: () => showListeners.forEach((listener) => listener({ scene: 1001 })),
    storage,
  };
  return Object.assign(wx, extra);
}

const ok = (data, header) => ({ statusCode: 200, data: { data }, header: header || {} });

/** An HTTP Date header for the server's (real) clock now. */
const dateHeader = () => ({ Date: new Date(realNow()).toUTCString() });

/** A promise and its resolve, for answers a test releases when it wants. */
function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

module.exports = { scriptedWx, tokens, ok, dateHeader, deferred, tick, realNow, HOUR };
