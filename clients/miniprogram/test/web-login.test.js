'use strict';

// Scan to log in, the mini-program's half (webLoginRequest, confirmWebLogin) against a real
// `gateway serve` in sandbox mode: a browser (fetch, with its cookie) starts a login, the SDK
// reads what asks and answers, the browser collects the login.
const { describe, it: nodeIt, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { createGatewayClient } = require('..');
const { createFakeWx } = require('./support/fake-wx');
const { startGateway, stopGateway, gatewayTests } = require('./support/gateway-process');

const START = `mutation { startWebLogin(input: {app: "shop-mp"}) { __typename
  ... on WebLoginStarted { ticket scene } ... on Error { code } } }`;
const STATUS = `query($ticket: String!) { webLoginStatus(ticket: $ticket) { __typename
  ... on WebLoginState { status login { account { id } } } } }`;

describe('scan to log in against a real sandbox gateway', () => {
  const { it, skip } = gatewayTests(nodeIt);
  let gateway;
  let users = 0;

  before(async () => {
    if (skip) return;
    gateway = await startGateway();
  });
  after(async () => {
    if (gateway) await stopGateway(gateway);
  });

  /** A browser: posts GraphQL with its own cookie (the binding startWebLogin sets). */
  function browser() {
    let cookie = '';
    return async function post(query, variables) {
      const headers = { 'content-type': 'application/json', origin: 'https://shop.example.com' };
      if (cookie) headers.cookie = cookie;
      const res = await fetch(gateway.endpoint, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
      const set = res.headers.get('set-cookie');
      if (set) cookie = set.split(';')[0];
      const body = await res.json();
      assert.equal(body.errors, undefined, JSON.stringify(body.errors));
      return Object.values(body.data)[0];
    };
  }

  function phone() {
    const wx = createFakeWx({ base: gateway.base, app: 'shop-mp', user: `scan${(users += 1)}-${process.pid}` });
    return { wx, gw: createGatewayClient({ endpoint: gateway.endpoint, app: 'shop-mp', wx }) };
  }

  it('reads what asks, approves, and only the starting browser gets the login', async () => {
    const post = browser();
    const started = await post(START);
    assert.equal(started.__typename, 'WebLoginStarted');
    const { wx, gw } = phone();
    const asking = await gw.webLoginRequest(started.scene);
    assert.equal(asking.status, 'SCANNED');
    assert.equal(asking.origin, 'https://shop.example.com');
    assert.equal(asking.app.key, 'shop-mp');
    const answered = await gw.confirmWebLogin(encodeURIComponent(started.scene), { approve: true });
    assert.equal(answered.status, 'APPROVED');
    assert.deepEqual(wx.count('webLoginRequest') + wx.count('approveWebLogin'), 2);

    const stranger = browser();
    const seen = await stranger(STATUS, { ticket: started.ticket });
    assert.deepEqual([seen.status, seen.login], ['APPROVED', null]);
    const mine = await post(STATUS, { ticket: started.ticket });
    assert.equal(mine.status, 'APPROVED');
    const viewer = await gw.request({ query: '{ viewer { id } }' });
    assert.equal(mine.login.account.id, viewer.viewer.id, 'the browser is logged in as the scanner');
  });

  it('denies, and a second answer rejects WEB_LOGIN_EXPIRED', async () => {
    const post = browser();
    const started = await post(START);
    const { gw } = phone();
    const denied = await gw.confirmWebLogin(started.scene, { approve: false });
    assert.equal(denied.status, 'DENIED');
    assert.equal((await post(STATUS, { ticket: started.ticket })).status, 'DENIED');
    await assert.rejects(gw.confirmWebLogin(started.scene), { code: 'WEB_LOGIN_EXPIRED' });
  });

  it('refuses a scene that no login code could carry, without a call', async () => {
    const { wx, gw } = phone();
    await assert.rejects(gw.confirmWebLogin(''), { code: 'INVALID_INPUT' });
    await assert.rejects(gw.confirmWebLogin('a'.repeat(33)), { code: 'INVALID_INPUT' });
    await assert.rejects(gw.webLoginRequest(undefined), { code: 'INVALID_INPUT' });
    assert.equal(wx.count('loginByCode'), 0);
  });
});
