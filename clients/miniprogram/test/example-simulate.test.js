'use strict';

// examples/miniprogram's page rendered by miniprogram-simulate (its WXML compiled and bound to
// the Page's methods, in jsdom), the real app.js and SDK, a simulated wx, against a real
// sandbox gateway: the taps a person makes, and what the page then shows.
const { describe, it: nodeIt, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Module = require('node:module');
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');

const { createFakeWx } = require('./support/fake-wx');
const { startGateway, stopGateway, gatewayTests, skipWithoutMutation } = require('./support/gateway-process');

const EXAMPLE = path.resolve(__dirname, '..', '..', '..', 'examples', 'miniprogram');
const PAGE = path.join(EXAMPLE, 'pages', 'index', 'index');
const CONFIRM = path.join(EXAMPLE, 'pages', 'weblogin', 'confirm');
const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

/** jsdom as the page's document; miniprogram-simulate defines the global Component. */
function installDom() {
  const { JSDOM } = require('jsdom');
  const dom = new JSDOM('<!doctype html><html><body></body></html>');
  const names = ['window', 'document', 'Event', 'CustomEvent', 'Element', 'Node', 'HTMLElement'];
  const saved = {};
  for (const name of names) {
    saved[name] = Object.getOwnPropertyDescriptor(globalThis, name);
    const value = name === 'window' ? dom.window : name === 'document' ? dom.window.document : dom.window[name];
    Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  }
  return () => {
    for (const name of names) {
      if (saved[name]) Object.defineProperty(globalThis, name, saved[name]);
      else delete globalThis[name];
    }
  };
}

/** The query the next rendered page is opened with (its onLoad's `options`). */
let openedWith = {};

/** Page({...}) as a component, the way miniprogram-simulate renders one. */
function pageAsComponent(def) {
  const methods = {};
  for (const name of Object.keys(def)) if (typeof def[name] === 'function') methods[name] = def[name];
  globalThis.Component({
    data: def.data,
    methods,
    lifetimes: {
      attached() {
        if (def.onLoad) def.onLoad.call(this, openedWith);
      },
      detached() {
        if (def.onUnload) def.onUnload.call(this);
      },
    },
  });
}

const simulate = () => require('miniprogram-simulate');

/** Polls `check` until it holds (the page's promises settle over the network). */
async function until(check, what) {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('examples/miniprogram rendered by miniprogram-simulate, against a sandbox gateway', () => {
  const { it, skip } = gatewayTests(nodeIt);
  let gateway;
  const undo = [];
  let page;
  let seen;
  let wx;

  before(async () => {
    if (skip) return;
    gateway = await startGateway();
    undo.push(installDom());
    const simulate = require('miniprogram-simulate');
    // (the confirm page's test renders a second page with it)
    const original = Module._resolveFilename;
    Module._resolveFilename = function resolve(request, ...rest) {
      if (request === 'wechat-identity-gateway-miniprogram') return require.resolve('..');
      return original.call(this, request, ...rest);
    };
    undo.push(() => (Module._resolveFilename = original));

    wx = createFakeWx({ base: gateway.base, app: 'shop-mp', user: 'unused' });
    seen = { toasts: [], modals: [], privacy: null };
    wx.showToast = ({ title }) => seen.toasts.push(title);
    wx.showModal = ({ title, content }) => seen.modals.push(`${title}: ${content}`);
    wx.stopPullDownRefresh = () => {};
    wx.onNeedPrivacyAuthorization = (listener) => (seen.privacy = listener);
    let app = null;
    Object.assign(globalThis, { wx, App: (def) => (app = def), getApp: () => app, Page: pageAsComponent });
    undo.push(() => ['wx', 'App', 'getApp', 'Page'].forEach((name) => delete globalThis[name]));

    require(path.join(EXAMPLE, 'config.js')).endpoint = gateway.endpoint;
    require(path.join(EXAMPLE, 'app.js'));
    app.onLaunch();
    page = simulate.render(simulate.load(PAGE, { compiler: 'simulate' }));
    page.attach(document.createElement('parent-wrapper'));
  });

  after(async () => {
    if (page) page.detach();
    undo.reverse().forEach((fn) => fn());
    if (gateway) await stopGateway(gateway);
  });

  const text = () => page.dom.textContent;
  const tap = (id, event, detail) => page.querySelector(`#${id}`).dispatchEvent(event, { detail });

  it('shows the login, answers the privacy popup, links the phone, shows every error, logs out', async () => {
    await until(() => /Logged in/.test(text()) && /WECHAT_OPENID/.test(text()), 'the viewer');
    assert.match(text(), /sandbox user: dev-/);

    const answers = [];
    seen.privacy((answer) => answers.push(answer), { referrer: 'getPhoneNumber' });
    await until(() => /Privacy/.test(text()), 'the privacy popup');
    tap('agree-privacy', 'agreeprivacyauthorization', {});
    await until(() => !/Privacy/.test(text()), 'the popup to close');
    assert.deepEqual(answers, [{ buttonId: 'agree-privacy', event: 'agree' }]);

    tap('link-phone', 'getphonenumber', { errMsg: 'getPhoneNumber:ok' });
    await until(() => /PHONE/.test(text().replace(/WECHAT|getPhoneNumber/g, '')), 'the phone identity');
    assert.match(seen.toasts.join('|'), /Phone linked/);

    tap('link-phone', 'getphonenumber', { errMsg: 'getPhoneNumber:fail user deny' });
    await until(() => seen.toasts.some((t) => /did not share/.test(t)), 'the refusal toast');
    tap('link-phone', 'getphonenumber', { errMsg: 'getPhoneNumber:fail no permission', errno: 102 });
    await until(() => seen.modals.length === 1, 'the PHONE_UNAVAILABLE dialog');
    assert.match(seen.modals[0], /^PHONE_UNAVAILABLE: .*errno 102/);

    tap('logout', 'tap', {});
    await until(() => /Not logged in/.test(text()), 'the logged-out state');
    assert.doesNotMatch(text(), /account/);
  });

  it('the phone login button, then the avatar and nickname', async (t) => {
    if (await skipWithoutMutation(t, gateway, 'loginByPhoneCode')) return;
    if (await skipWithoutMutation(t, gateway, 'updateProfile')) return;
    seen.modals.length = 0;
    tap('phone-login', 'getphonenumber', { errMsg: 'getPhoneNumber:ok' });
    await until(() => /Logged in/.test(text()) && /PHONE/.test(text().replace(/WECHAT/g, '')), 'the phone login');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-simulate-'));
    const avatar = path.join(dir, 'avatar.png');
    fs.writeFileSync(avatar, Buffer.from(PNG, 'base64'));
    tap('avatar', 'chooseavatar', { avatarUrl: avatar });
    await until(() => page.data.viewer && page.data.viewer.avatarUrl, 'the avatar');
    tap('nickname-form', 'submit', { value: { nickname: 'Ada' } });
    await until(() => /nickname Ada/.test(text()), 'the nickname');
    assert.deepEqual(seen.modals, []);
  });

  it('the scan-to-log-in confirm page: shows which site asks, approves, the browser is logged in', async () => {
    const post = async (query, variables, cookie) => {
      const headers = { 'content-type': 'application/json', origin: 'https://pc.example.com' };
      if (cookie) headers.cookie = cookie;
      const res = await fetch(gateway.endpoint, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
      return { body: await res.json(), cookie: (res.headers.get('set-cookie') || '').split(';')[0] };
    };
    const start = await post('mutation { startWebLogin(input: {app: "shop-mp"}) { ... on WebLoginStarted { ticket scene } } }');
    const { ticket, scene } = start.body.data.startWebLogin;
    openedWith = { scene: encodeURIComponent(scene) };
    const confirm = simulate().render(simulate().load(CONFIRM, { compiler: 'simulate' }));
    confirm.attach(document.createElement('parent-wrapper'));
    try {
      const shown = () => confirm.dom.textContent;
      await until(() => /pc\.example\.com/.test(shown()), 'which site asks');
      assert.match(shown(), /Log in on a website\?/);
      confirm.querySelector('#approve').dispatchEvent('tap', { detail: {} });
      await until(() => /logged in on the website/.test(shown()), 'the answer');
      const status = await post(
        'query($t: String!) { webLoginStatus(ticket: $t) { ... on WebLoginState { status login { account { id } } } } }',
        { t: ticket },
        start.cookie
      );
      assert.equal(status.body.data.webLoginStatus.status, 'APPROVED');
      assert.ok(status.body.data.webLoginStatus.login, 'the browser that showed the code is logged in');
    } finally {
      confirm.detach();
      openedWith = {};
    }
  });
});
