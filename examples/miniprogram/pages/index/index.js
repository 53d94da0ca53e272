// One page: who am I, link my WeChat profile (unionid), link my phone, log out.
const app = getApp();
const { gw, api, sandbox } = app;

const VIEWER = `{
  viewer {
    id nickname
    identities { id kind label app { key } }
  }
}`;

Page({
  data: { loggedIn: false, viewer: null, sandboxUser: sandbox ? sandbox.user : '', busy: false },

  onLoad() {
    this.stopWatching = gw.onChange(({ loggedIn }) => this.setData({ loggedIn }));
    this.setData({ loggedIn: gw.isLoggedIn() });
    this.loadViewer();
  },

  onUnload() {
    this.stopWatching();
  },

  onPullDownRefresh() {
    this.loadViewer().then(() => wx.stopPullDownRefresh());
  },

  /** gw.request logs in, refreshes or logs in again as needed. */
  loadViewer() {
    return gw
      .request({ query: VIEWER })
      .then(({ viewer }) => this.setData({ viewer, loggedIn: true }))
      .catch(showError);
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
    const detail = sandbox && isOk(e.detail) ? api.sandboxPhoneDetail() : Promise.resolve(e.detail);
    return this.run(
      detail.then((d) => gw.bindPhoneNumber(d)),
      ({ linked }) => (linked ? 'Phone linked' : 'Already linked')
    );
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
      .catch((error) => {
        // SESSION_EXPIRED: the SDK logged in again; the user taps the button once more.
        if (error.code !== 'USER_DENIED') showError(error);
      })
      .then(() => this.setData({ busy: false }));
  },
});

function isOk(detail) {
  return Boolean(detail) && /:ok$/.test(detail.errMsg || '');
}

function showError(error) {
  console.warn(error.code, error.message);
  wx.showModal({ title: error.code || 'Error', content: error.message, showCancel: false });
}
