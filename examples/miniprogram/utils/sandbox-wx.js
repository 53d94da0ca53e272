// A `wx` for trying the SDK against a sandbox gateway inside WeChat DevTools: everything is the
// real `wx` except that wx.login mints a code at the gateway's /sandbox/code for a made-up
// user, and the user-info and phone buttons' details come from /sandbox/open-data and
// /sandbox/phone-code (a sandbox gateway cannot read what the real WeChat gives).
// Only for sandbox mode: with a real gateway, pass nothing and the SDK uses `wx` itself.

function sandboxWx(realWx, { endpoint, app, user }) {
  const base = endpoint.replace(/\/graphql\/?$/, '');

  function mint(path, extra) {
    const url = `${base}${path}?app=${encodeURIComponent(app)}&user=${encodeURIComponent(user)}${extra || ''}`;
    return new Promise((resolve, reject) => {
      realWx.request({
        url,
        method: 'POST',
        success: (res) =>
          res.statusCode === 200
            ? resolve(res.data)
            : reject(new Error((res.data && res.data.error) || `HTTP ${res.statusCode}`)),
        fail: (err) => reject(new Error(err.errMsg)),
      });
    });
  }

  const wx = Object.create(realWx);
  wx.login = ({ success, fail }) =>
    mint('/sandbox/code').then(
      (body) => success({ code: body.code, errMsg: 'login:ok' }),
      (error) => fail({ errMsg: `login:fail ${error.message}` })
    );
  // The emulated WeChat session lives as long as the gateway process.
  wx.checkSession = ({ success }) => success({ errMsg: 'checkSession:ok' });

  /** What the getUserInfo button would give, sealed with the sandbox user's session_key. */
  wx.sandboxUserInfo = () =>
    mint('/sandbox/open-data').then((body) => ({
      errMsg: 'getUserInfo:ok',
      encryptedData: body.encryptedData,
      iv: body.iv,
      rawData: body.rawData,
      signature: body.signature,
    }));

  /** What the getPhoneNumber button would give: a one-time code. */
  wx.sandboxPhoneDetail = (phone) =>
    mint('/sandbox/phone-code', `&phone=${phone || '13800138000'}`).then((body) => ({
      errMsg: 'getPhoneNumber:ok',
      code: body.code,
    }));
  return wx;
}

/** A made-up user name kept in storage, so the same sandbox "person" comes back. */
function sandboxUser() {
  let user = wx.getStorageSync('sandbox.user');
  if (!user) {
    user = `dev-${Math.random().toString(36).slice(2, 8)}`;
    wx.setStorageSync('sandbox.user', user);
  }
  return user;
}

module.exports = { sandboxWx, sandboxUser };
