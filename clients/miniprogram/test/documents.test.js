'use strict';

// Trusted documents, the SDK's half: its own operations go by SHA-256 without the text
// (Apollo's persistedQuery form); the text follows only when the gateway asks for it.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { createGatewayClient } = require('..');
const { sha256 } = require('../lib/sha256');
const documents = require('../lib/documents');
const { scriptedWx, tokens, ok } = require('./support/scripted-wx');

const client = (wx, more) =>
  createGatewayClient(Object.assign({ endpoint: 'https://gw.example/graphql', app: 'shop-mp', wx }, more));
const hex = (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex');

test('sha256 matches node:crypto on the SDK documents and on odd inputs', () => {
  const samples = ['', 'abc', 'a'.repeat(55), 'a'.repeat(56), 'a'.repeat(64), 'x'.repeat(1000), '小明😀\u0000'];
  for (const text of samples.concat(Object.values(documents))) assert.equal(sha256(text), hex(text));
});

test("the SDK's operations go by hash without the text; an app's own request keeps its text", async () => {
  const wx = scriptedWx((field) =>
    field === 'loginByCode' ? ok({ loginByCode: tokens({ id: 1 }) }) : ok({ viewer: { id: 'acc-1' } })
  );
  const gw = client(wx);
  await gw.request({ query: '{ viewer { id } }' });
  const [login, viewer] = wx.sent.map((s) => s.data);
  assert.equal(login.query, undefined);
  assert.deepEqual(login.extensions, { persistedQuery: { version: 1, sha256Hash: hex(documents.LOGIN_BY_CODE) } });
  assert.equal(login.variables.input.app, 'shop-mp');
  assert.equal(viewer.query, '{ viewer { id } }');
  assert.equal(viewer.extensions, undefined);
});

test('PERSISTED_QUERY_NOT_FOUND: the text with the hash, for that document from then on', async () => {
  const wx = scriptedWx((field, body) => {
    if (!body.query && field === 'loginByCode') {
      return { statusCode: 200, data: { errors: [{ message: 'PersistedQueryNotFound', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } }] } };
    }
    if (field === 'loginByCode') return ok({ loginByCode: tokens({ id: 1 }) });
    return ok({ logout: { __typename: 'LogoutSuccess', revokedSessions: 1 } });
  });
  const gw = client(wx);
  await gw.login();
  await gw.logout();
  await gw.login();
  const bodies = wx.sent.map((s) => [s.field, typeof s.data.query === 'string', Boolean(s.data.extensions)]);
  assert.deepEqual(bodies, [
    ['loginByCode', false, true],
    ['loginByCode', true, true], // text and hash: the gateway checks they match
    ['logout', false, true], // another document still goes by hash
    ['loginByCode', true, true],
  ]);
});

test('a gateway that takes no hashes (400 without data): plain text from then on', async () => {
  const wx = scriptedWx((field, body) => {
    if (!body.query) return { statusCode: 400, data: { errors: [{ message: 'No GraphQL query found in the request' }] } };
    if (field === 'loginByCode') return ok({ loginByCode: tokens({ id: 1 }) });
    return ok({ logout: { __typename: 'LogoutSuccess', revokedSessions: 1 } });
  });
  const gw = client(wx);
  await gw.login();
  await gw.logout();
  const bodies = wx.sent.map((s) => [s.field, typeof s.data.query === 'string', Boolean(s.data.extensions)]);
  assert.deepEqual(bodies, [
    ['loginByCode', false, true],
    ['loginByCode', true, false],
    ['logout', true, false],
  ]);
});

test('documentHashes: false sends the text always', async () => {
  const wx = scriptedWx(() => ok({ loginByCode: tokens({ id: 1 }) }));
  await client(wx, { documentHashes: false }).login();
  assert.equal(wx.sent[0].data.query, documents.LOGIN_BY_CODE);
  assert.equal(wx.sent[0].data.extensions, undefined);
});
