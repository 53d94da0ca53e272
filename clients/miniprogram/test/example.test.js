'use strict';

// examples/miniprogram run as DevTools would run it (App, Page, getApp and wx as globals), its
// sandbox wrapper included, against a real sandbox gateway: the example a developer opens works.
const { describe, it: nodeIt, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Module = require('node:module');
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');

/** A 1×1 PNG, the picture chooseAvatar would give. */
const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

const { createFakeWx } = require('./support/fake-wx');
const { startGateway, stopGateway, gatewayTests, skipWithoutMutation } = require('./support/gateway-process');

const EXAMPLE = path.resolve(__dirname, '..', '..', '..', 'examples', 'miniprogram');

/** `require('wechat-identity-gateway-miniprogram')` from the example finds this package. */
function resolveSdkFromExample() {
  const original = Module._resolveFilename;
  Module._resolveFilename = function resolve(request, ...rest) {
    if (request === 'wechat-identity-gateway-miniprogram') return require.resolve('..');
    return original.call(this, request, ...rest);
  };
  return () => (Module._resolveFilename = original);
}

/** The mini-program runtime's globals; `toasts` and `modals` record what the user saw. */
function installRuntime(wx) {
  const seen = { toasts: [], modals: [], privacy: null };
  wx.showToast = ({ title }) => seen.toasts.push(title);
  wx.showModal = ({ title, content }) => seen.modals.push(`${title}: ${content}`);
  wx.stopPullDownRefresh = () => {};
  // WeChat calls this listener when a privacy API is first used (the phone button, ...)
  wx.onNeedPrivacyAuthorization = (listener) => (seen.privacy = listener);
  let app = null;
  let pageDef = null;
  Object.assign(globalThis, {
    wx,
    App: (def) => (app = def),
    getApp: () => app,
    Page: (def) => (pageDef = def),
  });
  return { seen, app: () => app, pageDef: () => pageDef };
}

/** A page instance: the definition's methods, its own data, setData merging. */
function instantiate(def) {
  const page = Object.create(def);
  page.data = JSON.parse(JSON.stringify(def.data));
  page.setData = (patch) => Object.assign(page.data, patch);
  return page;
}

describe('examples/miniprogram against a real sandbox gateway', () => {
  const { it, skip } = gatewayTests(nodeIt);
  let gateway;
  let restore;
  before(async () => {
    if (skip) return;
    gateway = await startGateway();
    restore = resolveSdkFromExample();
  });
  after(async () => {
    if (shared) shared.page.onUnload();
    restore && restore();
    for (const name of ['wx', 'App', 'getApp', 'Page']) delete globalThis[name];
    if (gateway) await stopGateway(gateway);
  });

  let shared = null; // the app and page of the first test, for the next

  it('logs in at launch, shows the viewer, links profile and phone, logs out', async () => {
    // The fake's own login/getUserInfo are unused: the example's sandbox wrapper mints codes.
    const wx = createFakeWx({ base: gateway.base, app: 'shop-mp', user: 'unused' });
    const runtime = installRuntime(wx);
    require(path.join(EXAMPLE, 'config.js')).endpoint = gateway.endpoint;
    require(path.join(EXAMPLE, 'app.js'));
    const app = runtime.app();
    app.onLaunch();
    require(path.join(EXAMPLE, 'pages', 'index', 'index.js'));
    const page = instantiate(runtime.pageDef());
    page.onLoad();
    await page.loadViewer();
    assert.deepEqual(runtime.seen.modals, []);
    assert.equal(wx.count('loginByCode'), 1, 'launch and page share one login');
    assert.equal(page.data.loggedIn, true);
    assert.match(page.data.sandboxUser, /^dev-/);

    // The privacy consent WeChat asks for before the phone button: the page's popup answers it.
    const answers = [];
    runtime.seen.privacy((answer) => answers.push(answer), { referrer: 'getPhoneNumber' });
    assert.equal(page.data.privacyShown, true);
    page.onAgreePrivacy();
    assert.deepEqual(answers, [{ buttonId: 'agree-privacy', event: 'agree' }]);
    assert.equal(page.data.privacyShown, false);

    await page.onUserInfo({ detail: { errMsg: 'getUserInfo:ok' } });
    await page.onPhoneNumber({ detail: { errMsg: 'getPhoneNumber:ok' } });
    assert.deepEqual(runtime.seen.modals, []);
    assert.equal(runtime.seen.toasts.length, 2);
    assert.match(runtime.seen.toasts[1], /Phone linked/);
    // Every error is shown: a refusal as a toast, the rest in a dialog with the code.
    await page.onPhoneNumber({ detail: { errMsg: 'getPhoneNumber:fail user deny' } });
    assert.match(runtime.seen.toasts[2], /did not share/);
    await page.onPhoneNumber({ detail: { errMsg: 'getPhoneNumber:fail no permission', errno: 102 } });
    assert.equal(runtime.seen.modals.length, 1);
    assert.match(runtime.seen.modals[0], /^PHONE_UNAVAILABLE: .*errno 102/);
    await page.onNicknameSubmit({ detail: { value: { nickname: 'x'.repeat(65) } } });
    assert.match(runtime.seen.modals[1], /^INVALID_INPUT: /);
    runtime.seen.modals.length = 0;
    const kinds = page.data.viewer.identities.map((i) => i.kind).sort();
    assert.deepEqual(kinds, ['PHONE', 'WECHAT_OPENID', 'WECHAT_UNIONID']);

    await page.onLogout();
    assert.equal(page.data.loggedIn, false);
    assert.equal(page.data.viewer, null);
    assert.equal(app.gw.isLoggedIn(), false);
    shared = { wx, runtime, app, page };
  });

  it('the first screen logs in with the phone; avatar and nickname are saved', async (t) => {
    if (await skipWithoutMutation(t, gateway, 'loginByPhoneCode')) return;
    if (await skipWithoutMutation(t, gateway, 'updateProfile')) return;
    const { runtime, page } = shared;
    runtime.seen.toasts.length = 0;
    await page.onPhoneLogin({ detail: { errMsg: 'getPhoneNumber:ok' } });
    assert.deepEqual(runtime.seen.modals, []);
    assert.equal(page.data.loggedIn, true);
    assert.ok(page.data.viewer.identities.some((i) => i.kind === 'PHONE'));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-example-'));
    const avatar = path.join(dir, 'avatar.png');
    fs.writeFileSync(avatar, Buffer.from(PNG, 'base64'));
    await page.onChooseAvatar({ detail: { avatarUrl: avatar } });
    await page.onNicknameSubmit({ detail: { value: { nickname: 'Ada' } } });
    assert.deepEqual(runtime.seen.modals, []);
    assert.equal(page.data.viewer.nickname, 'Ada');
    assert.match(page.data.viewer.avatarUrl, /^http/);
  });
});
