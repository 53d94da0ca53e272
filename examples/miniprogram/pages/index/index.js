// One page: log in with my phone number (the shop's first screen), who am I, my nickname and
// avatar, link my WeChat profile (unionid) or my phone, log out. Every error is shown.
const app = getApp();
const { gw, api, sandbox } = app;

const VIEWER = `{
  viewer {
    id nickname avatarUrl
    identities { id kind label app { key } }
  }
}`;

/** What the person is told for each error code (the SDK's and the gateway's). */
const EXPLAIN = {
  USER_DENIED: 'You did not share it. Tap again whenever you like.',
  PHONE_UNAVAILABLE:
    'WeChat could not give the phone number (the mini-program may lack the permission or its quota, or privacy consent is missing).',
  PHONE_CONFLICT:
    'This phone number belongs to another account. Log in with that account, or contact support: numbers are never moved automatically.',
  SESSION_EXPIRED: 'Your WeChat session was renewed: tap the button once more.',
  TIMEOUT: 'The network is slow: try again.',
  NETWORK_ERROR: 'No network: try again.',
  CONTENT_REJECTED: 'This nickname cannot be used: choose another.',
  IMAGE_TOO_LARGE: 'The picture is over 1 MiB: choose a smaller one.',
  INVALID_IMAGE: 'This file is not a JPEG, PNG or WebP picture.',
  INVALID_INPUT: 'Check what you typed (a nickname has at most 64 characters).',
  REAUTHENTICATION_REQUIRED: 'Please log in again.',
};

Page({
  data: {
    loggedIn: false,
    viewer: null,
    sandboxUser: sandbox ? sandbox.user : '',
    busy: false,
    privacyShown: false,
    nickname: '',
  },

  onLoad() {
    this.stopWatching = gw.onChange(({ loggedIn }) => this.setData({ loggedIn }));
    this.setData({ loggedIn: gw.isLoggedIn() });
    this.watchPrivacy();
    this.loadViewer();
  },

  onUnload() {
    this.stopWatching();
  },

  onPullDownRefresh() {
    this.loadViewer().then(() => wx.stopPullDownRefresh());
  },

  /**
   * WeChat asks for the privacy consent the first time a privacy API is used (the phone
   * button, chooseAvatar, the nickname input): show our popup; its agree button
   * (open-type="agreePrivacyAuthorization") lets the call go on, refusing cancels it.
   */
  watchPrivacy() {
    if (typeof wx.onNeedPrivacyAuthorization !== 'function') return; // base library < 2.32.3
    wx.onNeedPrivacyAuthorization((resolve) => {
      this.privacyResolve = resolve;
      this.setData({ privacyShown: true });
    });
  },

  onAgreePrivacy() {
    this.closePrivacy({ buttonId: 'agree-privacy', event: 'agree' });
  },

  onDisagreePrivacy() {
    this.closePrivacy({ event: 'disagree' });
  },

  closePrivacy(answer) {
    const resolve = this.privacyResolve;
    this.privacyResolve = null;
    this.setData({ privacyShown: false });
    if (resolve) resolve(answer);
  },

  openPrivacyContract() {
    if (wx.openPrivacyContract) wx.openPrivacyContract({});
  },

  /** gw.request logs in, refreshes or logs in again as needed. */
  loadViewer() {
    return gw
      .request({ query: VIEWER })
      .then(({ viewer }) => this.setData({ viewer, loggedIn: true, nickname: (viewer && viewer.nickname) || '' }))
      .catch(showError);
  },

  /** The first screen: <button open-type="getPhoneNumber">, "log in with my phone number". */
  onPhoneLogin(e) {
    return this.run(
      phoneDetail(e).then((d) => gw.loginWithPhone(d)),
      ({ isNewAccount }) => (isNewAccount ? 'Welcome!' : 'Logged in with your phone')
    );
  },

  /** <button open-type="getUserInfo">: link the unionid (may merge accounts). */
  onUserInfo(e) {
    const detail = sandbox && isOk(e.detail) ? api.sandboxUserInfo() : Promise.resolve(e.detail);
    return this.run(
      detail.then((d) => gw.bindUnionId(d)),
      ({ merged, linked }) => (merged ? 'Accounts merged' : linked ? 'WeChat linked' : 'Already linked')
    );
  },

  /** <button open-type="getPhoneNumber">: link the verified phone number. */
  onPhoneNumber(e) {
    return this.run(
      phoneDetail(e).then((d) => gw.bindPhoneNumber(d)),
      ({ linked }) => (linked ? 'Phone linked' : 'Already linked')
    );
  },

  /** <button open-type="chooseAvatar">: a temporary file, uploaded by the SDK. */
  onChooseAvatar(e) {
    const path = e.detail && e.detail.avatarUrl;
    if (!path) return Promise.resolve();
    return this.run(gw.updateProfile({ avatarTempPath: path }), () => 'Avatar saved');
  },

  /** <input type="nickname">: WeChat offers the WeChat nickname; saved on submit. */
  onNicknameInput(e) {
    this.setData({ nickname: e.detail.value });
  },

  onNicknameSubmit(e) {
    const nickname = ((e.detail && e.detail.value && e.detail.value.nickname) || this.data.nickname || '').trim();
    return this.run(gw.updateProfile({ nickname }), () => 'Nickname saved');
  },

  onLogout() {
    return this.run(gw.logout(), () => 'Logged out', () => this.setData({ viewer: null }));
  },

  onLogoutEverywhere() {
    return this.run(
      gw.logout({ everywhere: true }),
      ({ revokedSessions }) => `${revokedSessions} sessions ended`,
      () => this.setData({ viewer: null })
    );
  },

  /** Runs an SDK call with a busy flag, a toast for the outcome, and a fresh viewer. */
  run(promise, success, after) {
    this.setData({ busy: true });
    return promise
      .then((result) => {
        wx.showToast({ title: success(result), icon: 'none' });
        return after ? after() : this.loadViewer();
      })
      .catch(showError)
      .then(() => this.setData({ busy: false }));
  },
});

/** The phone button's detail; in sandbox mode an allowed tap gets a sandbox code. */
function phoneDetail(e) {
  return sandbox && isOk(e.detail) ? api.sandboxPhoneDetail() : Promise.resolve(e.detail);
}

function isOk(detail) {
  return Boolean(detail) && /:ok$/.test(detail.errMsg || '');
}

/** Every error is shown: a refusal as a light toast, the rest in a dialog with its code. */
function showError(error) {
  console.warn(error.code, error.message);
  if (error.code === 'USER_DENIED') {
    wx.showToast({ title: EXPLAIN.USER_DENIED, icon: 'none' });
    return;
  }
  const why = EXPLAIN[error.code] || error.message;
  const errno = error.errno ? ` (errno ${error.errno})` : '';
  wx.showModal({ title: error.code || 'Error', content: why + errno, showCancel: false });
}
