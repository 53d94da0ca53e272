// The SDK client, made once for the whole mini-program and shared by its pages (getApp().gw).
const { createGatewayClient } = require('wechat-identity-gateway-miniprogram');
const config = require('./config');
const { sandboxWx, sandboxUser } = require('./utils/sandbox-wx');

const sandbox = config.sandbox ? { user: sandboxUser() } : null;
const api = sandbox ? sandboxWx(wx, { endpoint: config.endpoint, app: config.app, user: sandbox.user }) : wx;

App({
  gw: createGatewayClient({ endpoint: config.endpoint, app: config.app, wx: api }),
  api,
  sandbox,

  onLaunch() {
    // Log in early (silent); pages' requests would do it anyway, sharing this one flight.
    this.gw.login().catch((error) => console.warn('login failed', error.code, error.message));
  },
});
