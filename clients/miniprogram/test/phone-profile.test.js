'use strict';

// The phone button's failures, loginWithPhone and updateProfile against the server contract
// (loginByPhoneCode, updateProfile, the avatar upload), with a scripted wx.
const { test } = require('node:test');
const assert = require('node:assert/strict');

const { createGatewayClient } = require('..');
const { scriptedWx, tokens, ok, dateHeader } = require('./support/scripted-wx');
const { queryOf } = require('./support/fake-wx');

const KEY = 'gateway.session';
const client = (wx, more) =>
  createGatewayClient(Object.assign({ endpoint: 'https://gw.example/graphql', app: 'shop-mp', wx }, more));

test('phone button failures: USER_DENIED only for a refusal, else PHONE_UNAVAILABLE with errno', async () => {
  const wx = scriptedWx(() => ok({ loginByCode: tokens({ id: 1 }) }));
  const gw = client(wx);
  const refusals = ['getPhoneNumber:fail user deny', 'getPhoneNumber:fail:user deny', 'getPhoneNumber:fail user cancel'];
  for (const errMsg of refusals) {
    await assert.rejects(gw.bindPhoneNumber({ errMsg }), { code: 'USER_DENIED' }, errMsg);
    await assert.rejects(gw.loginWithPhone({ errMsg }), { code: 'USER_DENIED' }, errMsg);
  }
  const failures = [
    { errMsg: 'getPhoneNumber:fail no permission', errno: 102 },
    { errMsg: 'getPhoneNumber:fail 该功能使用次数已达当前小程序上限', errno: 1400001 },
    { errMsg: 'getPhoneNumber:fail privacy permission is not authorized', errno: 104 },
    { errMsg: 'getPhoneNumber:fail api scope is not declared in the privacy agreement', errno: 112 },
  ];
  for (const detail of failures) {
    for (const call of [gw.bindPhoneNumber, gw.loginWithPhone]) {
      await assert.rejects(call(detail), (error) => {
        assert.equal(error.code, 'PHONE_UNAVAILABLE');
        assert.equal(error.errno, detail.errno);
        assert.equal(error.errMsg, detail.errMsg);
        assert.ok(error.message.includes(detail.errMsg));
        return true;
      });
    }
  }
  await assert.rejects(gw.loginWithPhone(undefined), { code: 'INVALID_INPUT' });
  assert.deepEqual(wx.calls, [], 'nothing was sent');
});

test('loginWithPhone: the silent login first, then loginByPhoneCode with its token; new tokens kept', async () => {
  let sent;
  const wx = scriptedWx((field, body, header) => {
    if (field === 'loginByCode') return ok({ loginByCode: tokens({ id: 1 }) }, dateHeader());
    sent = { input: body.variables.input, authorization: header.Authorization };
    return ok({ loginByPhoneCode: Object.assign(tokens({ id: 2 }), { isNewAccount: true }) }, dateHeader());
  });
  const gw = client(wx);
  const result = await gw.loginWithPhone({ errMsg: 'getPhoneNumber:ok', code: 'phone-code' });
  assert.deepEqual(result, { account: { id: 'acc-1' }, isNewAccount: true });
  assert.deepEqual(wx.calls, ['loginByCode', 'loginByPhoneCode']);
  assert.equal(sent.authorization, 'Bearer at-1');
  assert.equal(sent.input.app, 'shop-mp');
  assert.equal(sent.input.code, 'phone-code');
  assert.equal(typeof sent.input.client.platform, 'string');
  assert.equal(wx.getStorageSync(KEY).accessToken, 'at-2');
  assert.equal(gw.isLoggedIn(), true);
});

test('loginWithPhone: PHONE_CONFLICT rejects typed and the login stays as it was', async () => {
  const wx = scriptedWx((field) =>
    field === 'loginByCode'
      ? ok({ loginByCode: tokens({ id: 1 }) })
      : ok({ loginByPhoneCode: { __typename: 'ConflictError', code: 'PHONE_CONFLICT', message: 'on another account' } })
  );
  const gw = client(wx);
  await gw.login();
  const before = wx.getStorageSync(KEY);
  await assert.rejects(gw.loginWithPhone({ errMsg: 'getPhoneNumber:ok', code: 'c' }), {
    code: 'PHONE_CONFLICT',
    typename: 'ConflictError',
  });
  assert.deepEqual(wx.getStorageSync(KEY), before);
});

function profileWx(uploadAnswer) {
  const uploads = [];
  let profileInput = null;
  const wx = scriptedWx((field, body) => {
    if (field === 'loginByCode') return ok({ loginByCode: tokens({ id: 1 }) });
    profileInput = body.variables.input;
    const account = { id: 'acc-1', nickname: profileInput.nickname || null, avatarUrl: 'https://gw.example/avatars/av-1.png' };
    return ok({ updateProfile: { __typename: 'UpdateProfileSuccess', account } });
  }, {
    uploadFile(options) {
      uploads.push(options);
      setImmediate(() => options.success(uploadAnswer(options)));
    },
  });
  return { wx, uploads, input: () => profileInput };
}

test('updateProfile: wx.uploadFile with the bearer token, then updateProfile with the avatar id', async () => {
  const { wx, uploads, input } = profileWx(() => ({ statusCode: 200, data: '{"avatar":"av-1"}' }));
  const gw = client(wx);
  const result = await gw.updateProfile({ nickname: '小明', avatarTempPath: 'wxfile://tmp_avatar.png' });
  assert.equal(result.account.avatarUrl, 'https://gw.example/avatars/av-1.png');
  assert.equal(uploads.length, 1);
  assert.equal(uploads[0].url, 'https://gw.example/avatars');
  assert.equal(uploads[0].filePath, 'wxfile://tmp_avatar.png');
  assert.equal(uploads[0].name, 'file');
  assert.equal(uploads[0].header.Authorization, 'Bearer at-1');
  const { client: facts, ...sent } = input();
  assert.deepEqual(sent, { nickname: '小明', avatar: 'av-1' });
  assert.equal(typeof facts.platform, 'string');
  assert.deepEqual(wx.calls, ['loginByCode', 'updateProfile']);
});

test("updateProfile: the upload's typed refusals reject with their code; nicknames checked first", async () => {
  const answers = {
    big: { statusCode: 413, data: JSON.stringify({ errors: [{ message: 'over 1 MiB', extensions: { code: 'IMAGE_TOO_LARGE' } }] }) },
    bad: { statusCode: 400, data: JSON.stringify({ code: 'INVALID_IMAGE', message: 'not a picture' }) },
    proxy: { statusCode: 502, data: '<html>Bad Gateway</html>' },
  };
  const { wx, input } = profileWx((options) => answers[options.filePath]);
  const gw = client(wx, { avatarUploadUrl: 'https://cdn.example/upload' });
  await assert.rejects(gw.updateProfile({ avatarTempPath: 'big' }), { code: 'IMAGE_TOO_LARGE', status: 413 });
  await assert.rejects(gw.updateProfile({ avatarTempPath: 'bad' }), { code: 'INVALID_IMAGE', message: 'not a picture' });
  await assert.rejects(gw.updateProfile({ avatarTempPath: 'proxy' }), { code: 'HTTP_ERROR', status: 502 });
  assert.equal(input(), null, 'no updateProfile after a failed upload');
  for (const nickname of [42, 'a'.repeat(65), 'tab\there', 'bell\u0007']) {
    await assert.rejects(gw.updateProfile({ nickname }), { code: 'INVALID_INPUT', field: 'nickname' });
  }
  await assert.rejects(gw.updateProfile({}), { code: 'INVALID_INPUT' });
  assert.ok((await gw.updateProfile({ nickname: '😀'.repeat(64) })).account);
  await gw.updateProfile({ nickname: '' }); // an empty nickname clears it
  assert.equal(input().nickname, '');
});

test('updateProfile: a refused token on the upload renews once and uploads again', async () => {
  let first = true;
  const { wx, uploads } = profileWx(() => {
    if (first) {
      first = false;
      return { statusCode: 401, data: '', header: { 'WWW-Authenticate': 'Bearer error="invalid_token"' } };
    }
    return { statusCode: 201, data: '{"avatar":"av-2"}' };
  });
  const realRequest = wx.request;
  let n = 1;
  wx.request = (options) => {
    if (/^mutation GatewayRefreshToken/.test(queryOf(options.data))) {
      wx.calls.push('refreshToken');
      setImmediate(() => options.success(ok({ refreshToken: tokens({ id: (n += 1), typename: 'RefreshSuccess' }) })));
      return undefined;
    }
    return realRequest(options);
  };
  const gw = client(wx);
  await gw.updateProfile({ avatarTempPath: 'x.png' });
  assert.deepEqual(uploads.map((u) => u.header.Authorization), ['Bearer at-1', 'Bearer at-2']);
  assert.deepEqual(wx.calls, ['loginByCode', 'refreshToken', 'updateProfile']);
});
