'use strict';

// Edge cases with a scripted wx (no gateway): answers a real gateway never gives on demand.
const { test } = require('node:test');
const assert = require('node:assert/strict');

const { createGatewayClient } = require('..');
const { parseTime } = require('../lib/session-store');
const { defaultClientFacts } = require('../lib/client-facts');

const { scriptedWx, tokens, ok } = require('./support/scripted-wx');

const client = (wx, more) =>
  createGatewayClient(Object.assign({ endpoint: 'https://gw.example/graphql', app: 'shop-mp', wx }, more));

test('a 401 again after the one renewal rejects with the gateway code, no loop', async () => {
  let n = 0;
  const wx = scriptedWx((field) => {
    if (field === 'loginByCode') return ok({ loginByCode: tokens({ id: (n += 1) }) });
    if (field === 'refreshToken') {
      return ok({ refreshToken: tokens({ id: (n += 1), typename: 'RefreshSuccess' }) });
    }
    return {
      statusCode: 401,
      data: { errors: [{ message: 'expired', extensions: { code: 'TOKEN_EXPIRED' } }] },
    };
  });
  await assert.rejects(client(wx).request({ query: '{ viewer { id } }' }), {
    name: 'GatewayError',
    code: 'TOKEN_EXPIRED',
    status: 401,
  });
  assert.deepEqual(wx.calls, ['loginByCode', 'viewer', 'refreshToken', 'viewer']);
});

test('concurrent logins share one failed wx.login; the next call tries again', async () => {
  const wx = scriptedWx(() => ok({ loginByCode: tokens({ id: 1 }) }));
  let fails = 1;
  const realLogin = wx.login;
  wx.login = (options) => {
    if (fails > 0) {
      fails -= 1;
      wx.logins += 1;
      return setImmediate(() => options.fail({ errMsg: 'login:fail network' }));
    }
    return realLogin(options);
  };
  const gw = client(wx);
  const results = await Promise.allSettled([1, 2, 3, 4, 5].map(() => gw.login()));
  assert.equal(wx.logins, 1);
  for (const r of results) assert.equal(r.reason.code, 'WX_LOGIN_FAILED');
  assert.equal((await gw.login()).account.id, 'acc-1');
});

test('a refresh lost twice rejects NETWORK_ERROR and keeps the state for later', async () => {
  const wx = scriptedWx((field) => (field === 'refreshToken' ? 'fail' : ok({ loginByCode: tokens({ id: 1 }) })));
  const gw = client(wx);
  await gw.login();
  const state = wx.getStorageSync('gateway.session');
  wx.setStorageSync('gateway.session', Object.assign({}, state, { expiresAt: Date.now() - 1 }));
  await assert.rejects(gw.request({ query: '{ viewer { id } }' }), { code: 'NETWORK_ERROR' });
  assert.deepEqual(wx.calls, ['loginByCode', 'refreshToken', 'refreshToken']);
  assert.equal(wx.getStorageSync('gateway.session').refreshToken, 'rt-1');
  assert.ok(gw.isLoggedIn());
});

test('a proxy error page (not JSON) is an HTTP_ERROR with its status', async () => {
  const wx = scriptedWx((field) =>
    field === 'loginByCode' ? ok({ loginByCode: tokens({ id: 1 }) }) : { statusCode: 502, data: '<html>Bad Gateway</html>' }
  );
  await assert.rejects(client(wx).request({ query: '{ viewer { id } }' }), {
    code: 'HTTP_ERROR',
    status: 502,
  });
});

test('an error with extensions.code (a lost database) rejects with that code', async () => {
  const wx = scriptedWx((field) =>
    field === 'loginByCode'
      ? ok({ loginByCode: tokens({ id: 1 }) })
      : { statusCode: 200, data: { data: null, errors: [{ message: 'down', extensions: { code: 'UNAVAILABLE' } }] } }
  );
  await assert.rejects(client(wx).request({ query: '{ viewer { id } }' }), { code: 'UNAVAILABLE' });
});

test('a storage that throws: the state lives in memory', async () => {
  const wx = scriptedWx(() => ok({ loginByCode: tokens({ id: 1 }) }), {
    getStorageSync: () => {
      throw new Error('getStorageSync:fail');
    },
    setStorageSync: () => {
      throw new Error('setStorageSync:fail exceed storage max size');
    },
  });
  const gw = client(wx);
  await gw.login();
  assert.ok(gw.isLoggedIn());
  await gw.request({ query: '{ viewer { id } }' });
  assert.deepEqual(wx.calls, ['loginByCode', 'viewer']);
});

test('the global wx is the default; without one, a clear TypeError', () => {
  assert.throws(() => createGatewayClient({ endpoint: 'https://x/graphql', app: 'a' }), /found no `wx`/);
  globalThis.wx = scriptedWx(() => ok({}));
  try {
    assert.equal(typeof createGatewayClient({ endpoint: 'https://x/graphql', app: 'a' }).request, 'function');
  } finally {
    delete globalThis.wx;
  }
  assert.throws(() => createGatewayClient({ app: 'a', wx: scriptedWx() }), /endpoint/);
});

test('client facts: getSystemInfoSync when getDeviceInfo is missing; overrides win', async () => {
  const old = { getSystemInfoSync: () => ({ platform: 'android', model: 'Mi 10', system: 'Android 12', version: '8.0.30' }) };
  assert.deepEqual(defaultClientFacts(old), { platform: 'android', deviceParam: 'Mi 10; Android 12; 8.0.30' });
  let sent;
  const wx = scriptedWx((field, body) => {
    sent = body.variables.input.client;
    return ok({ loginByCode: tokens({ id: 1 }) });
  }, old);
  await client(wx, { client: { channel: 'poster' } }).login();
  assert.deepEqual(sent, { platform: 'android', channel: 'poster', deviceParam: 'Mi 10; Android 12; 8.0.30' });
});

test("Accept-Language: WeChat's language as a tag, an explicit one, or none", async () => {
  const headers = async (base, more) => {
    const wx = scriptedWx(() => ok({ loginByCode: tokens({ id: 1 }) }), base);
    await client(wx, more).login();
    return wx.sent[0].header['Accept-Language'];
  };
  assert.equal(await headers({ getAppBaseInfo: () => ({ language: 'zh_CN' }) }), 'zh-CN');
  assert.equal(await headers({ getAppBaseInfo: () => ({}), getSystemInfoSync: () => ({ language: 'en' }) }), 'en');
  assert.equal(await headers({ getAppBaseInfo: () => ({ language: 'zh_CN' }) }, { language: 'en-GB' }), 'en-GB');
  assert.equal(await headers({ getAppBaseInfo: () => ({ language: 'zh_CN' }) }, { language: null }), undefined);
  assert.equal(await headers({ getAppBaseInfo: () => ({ language: 'zh CN; evil' }) }), undefined);
});

test('gateway times with microseconds parse to milliseconds', () => {
  assert.equal(parseTime('2026-11-27T00:11:05.871095+00:00'), Date.UTC(2026, 10, 27, 0, 11, 5, 871));
  assert.equal(parseTime('2026-11-27T08:11:05+08:00'), Date.UTC(2026, 10, 27, 0, 11, 5));
  assert.equal(parseTime('garbage'), 0);
});

test('bindPhoneNumber on an older session: logs in again and sends the same code once more', async () => {
  let n = 0;
  const codes = [];
  const wx = scriptedWx((field, body) => {
    if (field === 'loginByCode') return ok({ loginByCode: tokens({ id: (n += 1) }) });
    codes.push(body.variables.input.code);
    if (codes.length === 1) {
      const refused = { __typename: 'ReauthenticationRequiredError', code: 'REAUTHENTICATION_REQUIRED', message: 'm' };
      return ok({ bindPhoneNumber: refused });
    }
    return ok({ bindPhoneNumber: { __typename: 'BindPhoneNumberSuccess', account: { id: 'acc-1' }, linked: true } });
  });
  const gw = client(wx);
  await gw.login();
  const bound = await gw.bindPhoneNumber({ errMsg: 'getPhoneNumber:ok', code: 'phone-1' });
  assert.equal(bound.linked, true);
  assert.deepEqual(codes, ['phone-1', 'phone-1']);
  assert.deepEqual(wx.calls, ['loginByCode', 'bindPhoneNumber', 'loginByCode', 'bindPhoneNumber']);
});
