'use strict';

// The SDK against a real `gateway serve` in sandbox mode, through a simulated `wx`.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { createGatewayClient, GatewayError } = require('..');
const { createFakeWx } = require('./support/fake-wx');
const { startGateway, stopGateway, skipUnlessGateway } = require('./support/gateway-process');

const KEY = 'gateway.session';
const ALLOWED = ['accessToken', 'accountId', 'expiresAt', 'refreshExpiresAt', 'refreshToken'];
const VIEWER = { query: '{ viewer { id } }' };

describe('against a real sandbox gateway', { skip: skipUnlessGateway() }, () => {
  let gateway;
  let users = 0;

  before(async () => {
    gateway = await startGateway();
  });
  after(async () => {
    if (gateway) await stopGateway(gateway);
  });

  /** A fresh user of `app` on a fake wx, and a client on it. */
  function setup(app = 'shop-mp', user = `user${(users += 1)}-${process.pid}`) {
    const wx = createFakeWx({ base: gateway.base, app, user });
    const gw = createGatewayClient({ endpoint: gateway.endpoint, app, wx });
    return { wx, gw, user };
  }

  const stored = (wx) => wx.getStorageSync(KEY);
  const edit = (wx, change) => wx.setStorageSync(KEY, Object.assign(stored(wx), change));
  const twenty = (gw) => Promise.all(Array.from({ length: 20 }, () => gw.request(VIEWER)));

  function assertAllViewers(results, accountId) {
    assert.equal(results.length, 20);
    for (const data of results) assert.equal(data.viewer.id, accountId);
  }

  it('20 concurrent requests at a cold start share one wx.login and one loginByCode', async () => {
    const { wx, gw } = setup();
    assert.equal(gw.isLoggedIn(), false);
    const results = await twenty(gw);
    assert.equal(wx.wxLogins, 1);
    assert.equal(wx.count('loginByCode'), 1);
    assert.equal(wx.count('viewer'), 20);
    assert.ok(gw.isLoggedIn());
    assertAllViewers(results, stored(wx).accountId);
  });

  it('20 concurrent requests on an expired access token share one refreshToken', async () => {
    const { wx, gw } = setup();
    await gw.login();
    const before = stored(wx);
    edit(wx, { expiresAt: Date.now() - 1000 });
    wx.resetCounts();
    const results = await twenty(gw);
    assert.equal(wx.count('refreshToken'), 1);
    assert.equal(wx.count('loginByCode'), 0);
    assertAllViewers(results, before.accountId);
    assert.notEqual(stored(wx).refreshToken, before.refreshToken);
    assert.ok(stored(wx).expiresAt > Date.now() + 60000);
  });

  it('a refused refresh token: the state is forgotten, one re-login, the request succeeds', async () => {
    const { wx, gw } = setup();
    const { account } = await gw.login();
    edit(wx, { expiresAt: Date.now() - 1000, refreshToken: 'not-a-refresh-token' });
    wx.resetCounts();
    const results = await twenty(gw);
    assert.equal(wx.count('refreshToken'), 1);
    assert.equal(wx.count('loginByCode'), 1);
    assertAllViewers(results, account.id); // the same person: the same account
  });

  it('an expired refresh token is never sent: straight to a re-login', async () => {
    const { wx, gw } = setup();
    await gw.login();
    edit(wx, { expiresAt: Date.now() - 2000, refreshExpiresAt: Date.now() - 1000 });
    assert.equal(gw.isLoggedIn(), false);
    wx.resetCounts();
    await gw.request(VIEWER);
    assert.equal(wx.count('refreshToken'), 0);
    assert.equal(wx.count('loginByCode'), 1);
  });

  it('a lost refreshToken answer: the retry with the same token works, no logout', async () => {
    const { wx, gw } = setup();
    const { account } = await gw.login();
    const spent = stored(wx).refreshToken;
    edit(wx, { expiresAt: Date.now() - 1000 });
    wx.resetCounts();
    wx.dropNextAnswer('refreshToken'); // the gateway rotates, the answer never arrives
    const data = await gw.request(VIEWER);
    assert.equal(data.viewer.id, account.id);
    const refreshes = wx.sent.filter((s) => s.names.includes('refreshToken'));
    assert.deepEqual(
      refreshes.map((s) => s.data.variables.refreshToken),
      [spent, spent]
    );
    assert.equal(wx.count('loginByCode'), 0);
    // The session lives on: the next refresh rotates normally, still without a login.
    edit(wx, { expiresAt: Date.now() - 1000 });
    assert.equal((await gw.request(VIEWER)).viewer.id, account.id);
    assert.equal(wx.count('refreshToken'), 3);
    assert.equal(wx.count('loginByCode'), 0);
  });

  it('a 401 (logout everywhere from another device): one renewal, the requests succeed', async () => {
    const phone = setup();
    const { account } = await phone.gw.login();
    const tablet = setup('shop-mp', phone.user); // the same person on another device
    await tablet.gw.login();
    const { revokedSessions } = await tablet.gw.logout({ everywhere: true });
    assert.ok(revokedSessions >= 2, `revoked ${revokedSessions}`);
    assert.equal(tablet.gw.isLoggedIn(), false);
    phone.wx.resetCounts();
    const results = await twenty(phone.gw);
    assertAllViewers(results, account.id);
    assert.equal(phone.wx.count('refreshToken'), 1); // refused: the session was revoked
    assert.equal(phone.wx.count('loginByCode'), 1);
    assert.ok(phone.wx.count('viewer') >= 21, 'at least one request was answered 401 first');
  });

  it('bindUnionId after a re-login, with user info fetched before and after it', async () => {
    const { wx, gw } = setup();
    const { account } = await gw.login();
    const early = await getUserInfo(wx); // sealed with the session_key of the first login
    edit(wx, { expiresAt: Date.now() - 1000, refreshToken: 'refused' });
    await gw.request(VIEWER); // re-login: wx.login rotates the session_key
    assert.equal(wx.wxLogins, 2);
    const first = await gw.bindUnionId(early); // the gateway kept the previous key
    assert.equal(first.account.id, account.id);
    const late = await getUserInfo(wx);
    const second = await gw.bindUnionId(late);
    assert.equal(second.account.id, account.id);
    assert.equal(second.linked, false);
    assert.equal(stored(wx).accountId, account.id);
  });

  it('bindUnionId when wx.checkSession fails: re-login, SESSION_EXPIRED, nothing sent', async () => {
    const { wx, gw } = setup();
    await gw.login();
    const detail = await getUserInfo(wx);
    wx.sessionAlive = false;
    wx.resetCounts();
    await assert.rejects(gw.bindUnionId(detail), (error) => {
      assert.ok(error instanceof GatewayError);
      assert.equal(error.code, 'SESSION_EXPIRED');
      assert.match(error.message, /user info again/);
      return true;
    });
    assert.equal(wx.wxLogins, 1);
    assert.equal(wx.count('loginByCode'), 1);
    assert.equal(wx.count('bindUnionId'), 0);
    wx.sessionAlive = true; // the page asks for the user info again, as told
    const bound = await gw.bindUnionId(await getUserInfo(wx));
    assert.equal(bound.account.id, stored(wx).accountId);
  });

  it('bindUnionId where WeChat gives no unionid rejects with the typed code', async () => {
    const { wx, gw } = setup('solo-mp');
    await gw.login();
    const detail = await getUserInfo(wx);
    await assert.rejects(gw.bindUnionId(detail), { name: 'GatewayError', code: 'NO_UNIONID' });
  });

  it('bindPhoneNumber: a real phone code links; a refused button sends nothing', async () => {
    const { wx, gw } = setup();
    const { account } = await gw.login();
    const phone = `1380013${String(process.pid % 10000).padStart(4, '0')}`;
    const bound = await gw.bindPhoneNumber(await wx.phoneButton(phone));
    assert.deepEqual(bound, { account: { id: account.id }, linked: true });
    const sent = wx.sent.length;
    const refused = { errMsg: 'getPhoneNumber:fail user deny' };
    await assert.rejects(gw.bindPhoneNumber(refused), { name: 'GatewayError', code: 'USER_DENIED' });
    assert.equal(wx.sent.length, sent);
    const other = setup(); // the same phone on another person: a typed conflict
    await assert.rejects(other.gw.bindPhoneNumber(await other.wx.phoneButton(phone)), {
      code: 'PHONE_CONFLICT',
      typename: 'ConflictError',
    });
  });

  it('storage holds one key with only the tokens, expiries and the account id', async () => {
    const { wx, gw, user } = setup();
    await gw.login();
    await gw.bindUnionId(await getUserInfo(wx));
    await gw.bindPhoneNumber(await wx.phoneButton('13900139000'));
    edit(wx, { expiresAt: Date.now() - 1000 });
    await gw.request(VIEWER); // and after a refresh
    assert.deepEqual([...wx.storage.keys()], [KEY]);
    const state = stored(wx);
    assert.deepEqual(Object.keys(state).sort(), ALLOWED);
    for (const field of ['expiresAt', 'refreshExpiresAt']) assert.equal(typeof state[field], 'number');
    const text = JSON.stringify([...wx.storage.entries()]);
    assert.doesNotMatch(text, /session_?key|openid|unionid|userInfo|nickName/i);
    assert.ok(!text.includes(user), 'no user info (the nickname is the user name here)');
  });

  it('sends the default client facts: platform, launch scene, model/system/version', async () => {
    const { gw } = setup();
    const data = await gw.request({
      query: '{ viewer { sessions { current platform channel deviceParam } } }',
    });
    const session = data.viewer.sessions.find((s) => s.current);
    assert.deepEqual(session, {
      current: true,
      platform: 'devtools',
      channel: '1001',
      deviceParam: 'iPhone 15; iOS 17.0; 8.0.50',
    });
  });

  it('logout forgets the state, the old token is refused, listeners hear it', async () => {
    const { wx, gw } = setup();
    const events = [];
    gw.onChange((change) => events.push(change));
    const { account } = await gw.login();
    const token = stored(wx).accessToken;
    assert.deepEqual(await gw.logout(), { revokedSessions: 1 });
    assert.equal(gw.isLoggedIn(), false);
    assert.equal(wx.storage.size, 0);
    assert.deepEqual(events, [
      { loggedIn: true, accountId: account.id },
      { loggedIn: false, accountId: null },
    ]);
    const res = await fetch(gateway.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(VIEWER),
    });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate'), /invalid_token/);
  });

  it('logout of a login that is already dead resolves without logging in', async () => {
    const { wx, gw } = setup();
    await gw.login();
    edit(wx, { expiresAt: Date.now() - 1000, refreshToken: 'refused' });
    wx.resetCounts();
    assert.deepEqual(await gw.logout({ everywhere: true }), { revokedSessions: 0 });
    assert.equal(wx.count('loginByCode'), 0);
    assert.equal(wx.storage.size, 0);
  });

  it('typed union errors, GraphQL errors and transport failures reject as GatewayError', async () => {
    const { wx, gw } = setup();
    const unknownApp = {
      query: `query($app: String!) { authorizationUrl(app: $app, redirectUri: "https://x.example/cb") {
        __typename ... on Error { code message } } }`,
      variables: { app: 'no-such-app' },
    };
    await assert.rejects(gw.request(unknownApp), { code: 'UNKNOWN_APP', typename: 'UnknownAppError' });
    await assert.rejects(gw.request({ query: '{ noSuchField }' }), { code: 'GRAPHQL_ERROR' });
    const lost = createGatewayClient({ endpoint: `${gateway.base}/nowhere`, app: 'shop-mp', wx });
    await assert.rejects(lost.request(VIEWER), { code: 'HTTP_ERROR', status: 404 });
    const down = createGatewayClient({ endpoint: 'http://127.0.0.1:1/graphql', app: 'shop-mp', wx });
    await assert.rejects(down.request(VIEWER), { code: 'NETWORK_ERROR' });
  });
});

/** wx.getUserInfo as a promise (the fake answers from /sandbox/open-data). */
function getUserInfo(wx) {
  return new Promise((success, fail) => wx.getUserInfo({ success, fail }));
}
