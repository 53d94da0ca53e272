// Scan to log in: the page a website's mini-program code opens ([web_scan] page). It shows
// which site asks and from where, and the person confirms or denies. `scene` arrives in the
// page's query, URL-encoded by WeChat (`options.scene`); the SDK takes it either way.
const { gw } = getApp();

/** What the person is told for each error code (the SDK's and the gateway's). */
const EXPLAIN = {
  WEB_LOGIN_EXPIRED: 'This login code has expired or was already used: refresh the code on the website and scan again.',
  UNSUPPORTED_APP_KIND: 'Scan this code with the mini-program that showed it.',
  INVALID_INPUT: 'This is not a login code.',
  NOT_LOGGED_IN: 'Log in to the mini-program first, then scan again.',
  TIMEOUT: 'The network is slow: try again.',
  NETWORK_ERROR: 'No network: try again.',
};

Page({
  data: {
    scene: '',
    asking: null, // { app, origin, ip, userAgent, requestedAt, expiresAt }
    answered: '', // 'APPROVED' | 'DENIED'
    busy: false,
    error: '',
  },

  onLoad(options) {
    const scene = decodeURIComponent((options && options.scene) || '');
    this.setData({ scene });
    if (!scene) {
      this.setData({ error: EXPLAIN.INVALID_INPUT });
      return;
    }
    this.run(() => gw.webLoginRequest(scene).then((asking) => this.setData({ asking })));
  },

  onApprove() {
    this.answer(true);
  },

  onDeny() {
    this.answer(false);
  },

  answer(approve) {
    this.run(() =>
      gw.confirmWebLogin(this.data.scene, { approve }).then((result) => this.setData({ answered: result.status }))
    );
  },

  /** One call at a time; its failure shown in words the person can act on. */
  run(call) {
    this.setData({ busy: true, error: '' });
    return call()
      .catch((error) => this.setData({ error: EXPLAIN[error.code] || `${error.code}: ${error.message}` }))
      .then(() => this.setData({ busy: false }));
  },
});
