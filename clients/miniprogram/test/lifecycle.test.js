'use strict';

// What real phones do that tests used to leave out, each with a scripted wx: a wrong clock, a
// stuck API, the app going to the background, a logout during the launch login, a proxy's
// 401, Taro's promise-returning APIs.
const { test, afterEach } = require('node:test');
const assert = require('node:assert/strict');

const { createGatewayClient } = require('..');
const { scriptedWx, tokens, ok, dateHeader, deferred, tick, realNow, HOUR } = require('./support/scripted-wx');

const KEY = 'gateway.session';
const VIEWER = { query: '{ viewer { id } }' };
const DAY = 24 * HOUR;

const client = (wx, more) =>
  createGatewayClient(Object.assign({ endpoint: 'https://gw.example/graphql', app: 'shop-mp', wx }, more));

/** A gateway: logins and refreshes with its (real) clock in the Date header, viewers. */
function gatewayWx(extra) {
  let n = 0;
  return scriptedWx((field) => {
    if (field === 'loginByCode') return ok({ loginByCode: tokens({ id: (n += 1) }) }, dateHeader());
    if (field === 'refreshToken') {
      return ok({ refreshToken: tokens({ id: (n += 1), typename: 'RefreshSuccess' }) }, dateHeader());
    }
    if (field === 'logout') return ok({ logout: { __typename: 'LogoutSuccess', revokedSessions: 1 } });
    return ok({ viewer: { id: 'acc-1' } }, dateHeader());
  }, extra);
}

/** The phone's clock off by `skew` ms until the test ends. */
function skewPhoneClock(skew) {
  Date.now = () => realNow() + skew;
}
afterEach(() => {
  Date.now = realNow;
});

for (const [name, skew] of [
  ['an hour fast', HOUR],
  ['a month fast', 30 * DAY],
  ['a month slow', -30 * DAY],
]) {
  test(`a phone clock ${name}: logged in right after login, no refresh or re-login per request`, async () => {
    skewPhoneClock(skew);
    const wx = gatewayWx();
    const gw = client(wx);
    await gw.login();
    assert.equal(gw.isLoggedIn(), true);
    for (let i = 0; i < 5; i += 1) await gw.request(VIEWER);
    assert.deepEqual(wx.calls, ['loginByCode', 'viewer', 'viewer', 'viewer', 'viewer', 'viewer']);
    const state = wx.getStorageSync(KEY);
    // stored on the phone's clock: an hour of life from now, as the phone counts
    assert.ok(Math.abs(state.expiresAt - (Date.now() + HOUR)) < 5000, 'expiresAt on the phone clock');
  });
}

test('a phone clock a month fast: the access token is refreshed when the gateway says, not before', async () => {
  skewPhoneClock(30 * DAY);
  let n = 0;
  const wx = scriptedWx((field) => {
    if (field === 'loginByCode') return ok({ loginByCode: tokens({ id: 1, lifetime: 90 * 1000 }) }, dateHeader());
    if (field === 'refreshToken') return ok({ refreshToken: tokens({ id: (n += 2), typename: 'RefreshSuccess' }) }, dateHeader());
    return ok({ viewer: { id: 'acc-1' } });
  });
  const gw = client(wx);
  await gw.login();
  await gw.request(VIEWER); // 90 s left: no refresh yet
  skewPhoneClock(30 * DAY + 45 * 1000); // 45 s later: within the minute's margin
  await gw.request(VIEWER);
  assert.deepEqual(wx.calls, ['loginByCode', 'viewer', 'refreshToken', 'viewer']);
});

test('a hanging wx.login rejects TIMEOUT, clears its flight, and the next login works', async () => {
  const wx = gatewayWx();
  const realLogin = wx.login;
  let hang = true;
  wx.login = (options) => (hang ? undefined : realLogin(options));
  const gw = client(wx, { timeout: 50 });
  const results = await Promise.allSettled([gw.login(), gw.request(VIEWER), gw.request(VIEWER)]);
  for (const r of results) assert.equal(r.reason.code, 'TIMEOUT');
  hang = false;
  assert.equal((await gw.login()).account.id, 'acc-1');
  assert.deepEqual(await gw.request(VIEWER), { viewer: { id: 'acc-1' } });
});

test('a request that never answers rejects TIMEOUT and its task is aborted', async () => {
  let hang = false;
  const wx = scriptedWx((field) =>
    field === 'loginByCode' ? ok({ loginByCode: tokens({ id: 1 }) }) : hang ? 'hang' : ok({ viewer: { id: 'acc-1' } })
  );
  const gw = client(wx, { timeout: 50 });
  await gw.login();
  hang = true;
  await assert.rejects(gw.request(VIEWER), { name: 'GatewayError', code: 'TIMEOUT' });
  assert.equal(wx.aborted, 1);
  assert.equal(wx.sent[1].timeout, 50, 'wx.request gets the timeout too');
  hang = false;
  assert.deepEqual(await gw.request(VIEWER), { viewer: { id: 'acc-1' } });
});

test('a hanging wx.checkSession: bindUnionId rejects TIMEOUT, nothing sent', async () => {
  const wx = gatewayWx({ checkSession: () => {} });
  const gw = client(wx, { timeout: 50 });
  await gw.login();
  await assert.rejects(gw.bindUnionId({ errMsg: 'getUserInfo:ok', encryptedData: 'e', iv: 'i' }), {
    code: 'TIMEOUT',
  });
  assert.deepEqual(wx.calls, ['loginByCode']);
});

test('no refresh while hidden: a request needing one waits for the app to show', async () => {
  const wx = gatewayWx();
  const gw = client(wx);
  await gw.login();
  wx.setStorageSync(KEY, Object.assign(wx.getStorageSync(KEY), { expiresAt: Date.now() - 1 }));
  wx.hide();
  let done = false;
  const pending = gw.request(VIEWER).then((data) => ((done = true), data));
  for (let i = 0; i < 5; i += 1) await tick();
  assert.equal(done, false);
  assert.deepEqual(wx.calls, ['loginByCode']);
  wx.show();
  assert.deepEqual(await pending, { viewer: { id: 'acc-1' } });
  assert.deepEqual(wx.calls, ['loginByCode', 'refreshToken', 'viewer']);
});

test('a refresh interrupted by the background is not resent: on show, a fresh silent login', async () => {
  const lost = deferred();
  let n = 0;
  const wx = scriptedWx((field) => {
    if (field === 'loginByCode') return ok({ loginByCode: tokens({ id: (n += 1) }) }, dateHeader());
    if (field === 'refreshToken') return lost.promise; // the app goes away, then the answer is lost
    return ok({ viewer: { id: 'acc-1' } });
  });
  const gw = client(wx);
  const events = [];
  await gw.login();
  gw.onChange((change) => events.push(change));
  const spent = wx.getStorageSync(KEY).refreshToken;
  wx.setStorageSync(KEY, Object.assign(wx.getStorageSync(KEY), { expiresAt: Date.now() - 1 }));
  const pending = gw.request(VIEWER);
  await tick();
  await tick();
  assert.deepEqual(wx.calls, ['loginByCode', 'refreshToken']);
  wx.hide();
  lost.resolve('fail');
  for (let i = 0; i < 5; i += 1) await tick();
  assert.deepEqual(wx.calls, ['loginByCode', 'refreshToken'], 'no resend while hidden');
  assert.equal(wx.getStorageSync(KEY).refreshToken, '', 'the possibly spent token is dropped');
  assert.equal(gw.isLoggedIn(), true);
  wx.show();
  assert.deepEqual(await pending, { viewer: { id: 'acc-1' } });
  assert.deepEqual(wx.calls, ['loginByCode', 'refreshToken', 'loginByCode', 'viewer']);
  assert.equal(wx.logins, 2, 'a fresh wx.login');
  const refreshes = wx.sent.filter((s) => s.field === 'refreshToken');
  assert.deepEqual(refreshes.map((s) => s.data.variables.refreshToken), [spent]);
  assert.deepEqual(events, [], 'the page saw no logout and login');
});

test('a dropped refresh token left in storage: the next client logs in instead of refreshing', async () => {
  const wx = gatewayWx();
  await client(wx).login();
  wx.setStorageSync(KEY, Object.assign(wx.getStorageSync(KEY), { expiresAt: Date.now() - 1, refreshToken: '' }));
  const gw = client(wx); // the app was killed in the background and launched again
  assert.equal(gw.isLoggedIn(), true);
  await gw.request(VIEWER);
  assert.deepEqual(wx.calls, ['loginByCode', 'loginByCode', 'viewer']);
});

test('logout during the launch login wins: no login state, the fresh session is ended', async () => {
  const wx = gatewayWx();
  const realLogin = wx.login;
  const held = deferred();
  wx.login = (options) => held.promise.then(() => realLogin(options));
  const gw = client(wx);
  const launch = gw.login();
  const page = gw.request(VIEWER);
  await tick();
  assert.deepEqual(await gw.logout(), { revokedSessions: 0 });
  held.resolve();
  await assert.rejects(launch, { code: 'NOT_LOGGED_IN' });
  await assert.rejects(page, { code: 'NOT_LOGGED_IN' });
  await tick();
  await tick();
  assert.equal(gw.isLoggedIn(), false);
  assert.equal(wx.storage.size, 0);
  const ended = wx.sent.find((s) => s.field === 'logout');
  assert.ok(ended, 'the session the login made is ended at the gateway');
  assert.equal(ended.header.Authorization, 'Bearer at-1');
  // a request after the logout logs in again, as any request does
  assert.deepEqual(await gw.request(VIEWER), { viewer: { id: 'acc-1' } });
  assert.equal(gw.isLoggedIn(), true);
});

test("a proxy's plain 401 is an HTTP_ERROR and spends no refresh token", async () => {
  const wx = scriptedWx((field) =>
    field === 'loginByCode'
      ? ok({ loginByCode: tokens({ id: 1 }) })
      : { statusCode: 401, data: '<html>401 Authorization Required</html>', header: { 'WWW-Authenticate': 'Basic realm="proxy"' } }
  );
  const gw = client(wx);
  await gw.login();
  await assert.rejects(gw.request(VIEWER), { code: 'HTTP_ERROR', status: 401 });
  assert.deepEqual(wx.calls, ['loginByCode', 'viewer']);
  assert.equal(wx.getStorageSync(KEY).refreshToken, 'rt-1');
});

test("the gateway's 401 (WWW-Authenticate: Bearer) renews once", async () => {
  let first = true;
  let n = 0;
  const wx = scriptedWx((field) => {
    if (field === 'loginByCode') return ok({ loginByCode: tokens({ id: (n += 1) }) });
    if (field === 'refreshToken') return ok({ refreshToken: tokens({ id: (n += 1), typename: 'RefreshSuccess' }) });
    if (first) {
      first = false;
      return { statusCode: 401, data: '', header: { 'www-authenticate': 'Bearer error="invalid_token"' } };
    }
    return ok({ viewer: { id: 'acc-1' } });
  });
  const gw = client(wx);
  assert.deepEqual(await gw.request(VIEWER), { viewer: { id: 'acc-1' } });
  assert.deepEqual(wx.calls, ['loginByCode', 'viewer', 'refreshToken', 'viewer']);
});

test("Taro-shaped APIs (callbacks and a returned promise): failures leave no unhandled rejection", async () => {
  const unhandled = [];
  const onUnhandled = (reason) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    // Taro.login / Taro.request / Taro.checkSession call the callbacks and return a promise
    // that rejects on failure as well.
    const promised = (run) => (options) =>
      new Promise((resolve, reject) => {
        run({
          success: (res) => (options.success && options.success(res), resolve(res)),
          fail: (err) => (options.fail && options.fail(err), reject(err)),
          options,
        });
      });
    let loginFails = true;
    const wx = scriptedWx(() => 'fail', {
      login: promised(({ success, fail }) =>
        setImmediate(() => (loginFails ? fail({ errMsg: 'login:fail' }) : success({ code: 'c' })))
      ),
      checkSession: promised(({ fail }) => setImmediate(() => fail({ errMsg: 'checkSession:fail' }))),
    });
    const scripted = wx.request;
    wx.request = promised(({ success, fail, options }) =>
      scripted(Object.assign({}, options, { success, fail }))
    );
    const gw = client(wx);
    await assert.rejects(gw.login(), { code: 'WX_LOGIN_FAILED' });
    loginFails = false;
    await assert.rejects(gw.login(), { code: 'NETWORK_ERROR' });
    await assert.rejects(gw.bindUnionId({ errMsg: 'getUserInfo:ok', encryptedData: 'e', iv: 'i' }), {
      code: 'NETWORK_ERROR', // checkSession failed: a re-login, which fails here
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
