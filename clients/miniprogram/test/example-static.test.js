'use strict';

// examples/miniprogram's page as WeChat reads it, without a gateway: every event its WXML binds
// is a method of its Page, and it has the buttons the README promises (the phone login, the
// avatar, the nickname input, the privacy consent).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const PAGE = path.resolve(__dirname, '..', '..', '..', 'examples', 'miniprogram', 'pages', 'index');

/** The Page definition of index.js, with the runtime's globals stubbed. */
function pageDefinition() {
  let def = null;
  const sandbox = { gw: {}, api: {}, sandbox: null };
  const saved = { getApp: globalThis.getApp, Page: globalThis.Page, wx: globalThis.wx };
  Object.assign(globalThis, { getApp: () => sandbox, Page: (d) => (def = d), wx: {} });
  const file = path.join(PAGE, 'index.js');
  try {
    delete require.cache[require.resolve(file)];
    require(file);
  } finally {
    Object.assign(globalThis, saved);
    for (const name of Object.keys(saved)) if (saved[name] === undefined) delete globalThis[name];
    delete require.cache[require.resolve(file)];
  }
  return def;
}

const wxml = fs.readFileSync(path.join(PAGE, 'index.wxml'), 'utf8');

test('every event the WXML binds is a method of the Page', () => {
  const def = pageDefinition();
  const handlers = [...wxml.matchAll(/\b(?:bind|catch):?([a-z]+)="([^"{}]+)"/g)];
  assert.ok(handlers.length >= 10, `found ${handlers.length} bindings`);
  for (const [, event, handler] of handlers) {
    assert.equal(typeof def[handler], 'function', `bind${event}="${handler}" has no method`);
  }
});

test('the page has the phone login, avatar, nickname and privacy consent controls', () => {
  const tags = [...wxml.matchAll(/<(button|input)\b[^>]*>/g)].map((m) => m[0]);
  const has = (re, why) => assert.ok(tags.some((t) => re.test(t)), why);
  has(/open-type="getPhoneNumber"[^>]*bindgetphonenumber="onPhoneLogin"/, 'the phone login button');
  has(/open-type="chooseAvatar"[^>]*bindchooseavatar="onChooseAvatar"/, 'the avatar button');
  has(/<input\b[^>]*type="nickname"/, 'the nickname input');
  has(/open-type="agreePrivacyAuthorization"[^>]*bindagreeprivacyauthorization="onAgreePrivacy"/, 'the consent button');
  const app = JSON.parse(fs.readFileSync(path.join(PAGE, '..', '..', 'app.json'), 'utf8'));
  assert.equal(app.__usePrivacyCheck__, true);
});

test('the scan-to-log-in confirm page: its events are methods, and it is registered', () => {
  const confirm = path.join(PAGE, '..', 'weblogin');
  const markup = fs.readFileSync(path.join(confirm, 'confirm.wxml'), 'utf8');
  let def = null;
  const saved = { getApp: globalThis.getApp, Page: globalThis.Page };
  Object.assign(globalThis, { getApp: () => ({ gw: {} }), Page: (d) => (def = d) });
  const file = path.join(confirm, 'confirm.js');
  try {
    require(file);
  } finally {
    Object.assign(globalThis, saved);
    for (const name of Object.keys(saved)) if (saved[name] === undefined) delete globalThis[name];
    delete require.cache[require.resolve(file)];
  }
  const handlers = [...markup.matchAll(/\bbind:?([a-z]+)="([^"{}]+)"/g)].map((m) => m[2]);
  assert.deepEqual(handlers.sort(), ['onApprove', 'onDeny']);
  for (const handler of handlers) assert.equal(typeof def[handler], 'function', handler);
  const app = JSON.parse(fs.readFileSync(path.join(PAGE, '..', '..', 'app.json'), 'utf8'));
  assert.ok(app.pages.includes('pages/weblogin/confirm'));
});
