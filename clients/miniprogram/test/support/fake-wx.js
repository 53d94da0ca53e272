'use strict';

/**
 * A simulated `wx` for one user of one mini-program, backed by a real sandbox gateway:
 *
 * - `login` mints a real code at the gateway's `/sandbox/code`;
 * - `request` goes over `fetch` and answers like wx.request (`success` for every HTTP status,
 *   `data` already parsed, `fail` only when no answer came); it counts the GraphQL operations
 *   by their top-level field, and can drop answers (`dropNextAnswer('refreshToken')`: the
 *   gateway gets and processes the request, the caller gets `fail` as on a timeout);
 * - storage in memory (`getStorageSync` gives '' for a missing key, as wx does);
 * - `checkSession` succeeds while `sessionAlive` is true;
 * - `getUserInfo` gives the detail from `/sandbox/open-data`; `phoneButton()` gives the
 *   getPhoneNumber button's detail with a code from `/sandbox/phone-code`;
 * - `uploadFile` sends the file at `filePath` (a path on this machine) as multipart, answers
 *   like wx.uploadFile (`data` is the body's text);
 * - `hide()` / `show()` call the onAppHide / onAppShow listeners; `holdLogins()` makes
 *   wx.login wait until the function it returns is called.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const OPERATIONS = [
  'loginByCode',
  'refreshToken',
  'logout',
  'bindUnionId',
  'bindPhoneNumber',
  'loginByPhoneCode',
  'updateProfile',
  'viewer',
  'checkSession',
  'webLoginRequest',
  'approveWebLogin',
];

function createFakeWx({ base, app, user }) {
  const storage = new Map();
  const counts = {};
  const drops = {};
  const hooks = {};
  const sent = [];
  const hideListeners = [];
  const showListeners = [];
  let held = null;
  const sandbox = (path, extra) =>
    fetchJson(`${base}${path}?app=${enc(app)}&user=${enc(user)}${extra || ''}`);

  const wx = {
    sessionAlive: true,
    wxLogins: 0,
    sent,
    counts,
    count: (name) => counts[name] || 0,
    resetCounts() {
      Object.keys(counts).forEach((k) => delete counts[k]);
      wx.wxLogins = 0;
      sent.length = 0;
    },
    /** Runs `hook` once, right after the next request asking for `name` is sent. */
    whenSent(name, hook) {
      hooks[name] = hook;
    },
    dropNextAnswer(name) {
      drops[name] = (drops[name] || 0) + 1;
    },
    storage,

    onAppHide: (listener) => hideListeners.push(listener),
    onAppShow: (listener) => showListeners.push(listener),
    hide: () => hideListeners.forEach((listener) => listener()),
    show: () => showListeners.forEach((listener) => listener({ scene: 1001 })),

    holdLogins() {
      let release;
      held = new Promise((resolve) => (release = resolve));
      return () => {
        held = null;
        release();
      };
    },

    uploadFile(options) {
      sent.push({ names: ['upload'], header: options.header, url: options.url });
      upload(options).then(options.success, (error) => options.fail({ errMsg: 'uploadFile:fail ' + error.message }));
    },

    login({ success, fail }) {
      wx.wxLogins += 1;
      Promise.resolve(held)
        .then(() => sandbox('/sandbox/code'))
        .then(
        (body) => success({ code: body.code, errMsg: 'login:ok' }),
        (error) => fail({ errMsg: 'login:fail ' + error.message })
      );
    },

    checkSession({ success, fail }) {
      setImmediate(() =>
        wx.sessionAlive ? success({ errMsg: 'checkSession:ok' }) : fail({ errMsg: 'checkSession:fail session expired' })
      );
    },

    getUserInfo({ success, fail }) {
      sandbox('/sandbox/open-data').then(
        (body) =>
          success({
            errMsg: 'getUserInfo:ok',
            userInfo: JSON.parse(body.rawData),
            rawData: body.rawData,
            signature: body.signature,
            encryptedData: body.encryptedData,
            iv: body.iv,
          }),
        (error) => fail({ errMsg: 'getUserInfo:fail ' + error.message })
      );
    },

    /** The `detail` of `<button open-type="getPhoneNumber">` when the user allows it. */
    async phoneButton(phone) {
      const body = await sandbox('/sandbox/phone-code', `&phone=${enc(phone)}`);
      return { errMsg: 'getPhoneNumber:ok', code: body.code };
    },

    request(options) {
      // A hash without the text (trusted documents) is booked once the gateway took it: an
      // old gateway refuses it and the SDK sends the text, which is the one that counts.
      const hashOnly = !options.data || typeof options.data.query !== 'string';
      const book = () => {
        const names = operationsOf(options.data);
        names.forEach((name) => (counts[name] = (counts[name] || 0) + 1));
        sent.push({ names, header: options.header, data: options.data });
        names.forEach((name) => {
          const hook = hooks[name];
          delete hooks[name];
          if (hook) hook();
        });
        const drop = names.find((name) => drops[name] > 0);
        if (drop) drops[drop] -= 1;
        return drop;
      };
      let drop = hashOnly ? null : book();
      answer(options).then(
        (res) => {
          if (hashOnly) {
            if (hashRefused(res)) return options.success(res);
            drop = book();
          }
          return drop ? options.fail({ errMsg: 'request:fail timeout' }) : options.success(res);
        },
        (error) => options.fail({ errMsg: 'request:fail ' + error.message })
      );
    },

    getStorageSync: (key) => (storage.has(key) ? structuredClone(storage.get(key)) : ''),
    setStorageSync: (key, value) => void storage.set(key, structuredClone(value)),
    removeStorageSync: (key) => void storage.delete(key),

    getDeviceInfo: () => ({ platform: 'devtools', model: 'iPhone 15', system: 'iOS 17.0' }),
    getAppBaseInfo: () => ({ version: '8.0.50', SDKVersion: '3.4.0' }),
    getLaunchOptionsSync: () => ({ scene: 1001, path: 'pages/index/index', query: {} }),
  };
  return wx;
}

/** What wx.request gives `success`: statusCode, data parsed when it is JSON, header. */
async function answer(options) {
  const res = await fetch(options.url, {
    method: options.method || 'GET',
    headers: options.header,
    body: options.method === 'POST' ? JSON.stringify(options.data) : undefined,
  });
  const text = await res.text();
  let data = text;
  try {
    data = JSON.parse(text);
  } catch (_) {
    // wx.request leaves a body that is not JSON as a string
  }
  return { statusCode: res.status, data, header: Object.fromEntries(res.headers) };
}

/** What wx.uploadFile gives `success`: statusCode, data as text. */
async function upload(options) {
  const form = new FormData();
  const bytes = fs.readFileSync(options.filePath);
  form.append(options.name, new Blob([bytes]), path.basename(options.filePath));
  const res = await fetch(options.url, { method: 'POST', headers: options.header, body: form });
  return { statusCode: res.status, data: await res.text(), header: Object.fromEntries(res.headers) };
}

/** The top-level operations a GraphQL body asks for, by field name. */
function operationsOf(data) {
  const query = queryOf(data);
  return OPERATIONS.filter((name) => new RegExp(`\\b${name}\\s*[({]`).test(query));
}

/** The SDK's documents by their SHA-256 (what a hash-only body stands for). */
const SDK_DOCUMENTS = Object.fromEntries(
  Object.values(require('../../lib/documents')).map((doc) => [crypto.createHash('sha256').update(doc).digest('hex'), doc])
);

/** A body's document: its text, or the SDK document its persistedQuery hash names. */
function queryOf(data) {
  if (data && typeof data.query === 'string') return data.query;
  const persisted = data && data.extensions && data.extensions.persistedQuery;
  return (persisted && SDK_DOCUMENTS[persisted.sha256Hash]) || '';
}

/** The gateway did not take a hash-only body (an old gateway, or an unknown hash). */
function hashRefused(res) {
  const body = res.data && typeof res.data === 'object' ? res.data : null;
  const code = body && body.errors && body.errors[0] && body.errors[0].extensions && body.errors[0].extensions.code;
  return code === 'PERSISTED_QUERY_NOT_FOUND' || (res.statusCode === 400 && !(body && body.data));
}

async function fetchJson(url) {
  const res = await fetch(url, { method: 'POST' });
  const body = await res.json();
  if (!res.ok) throw new Error(`${url}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

const enc = encodeURIComponent;

module.exports = { createFakeWx, queryOf };
