// Where the gateway is. `gateway serve` (sandbox mode) listens on 127.0.0.1:8000; on a phone
// (preview / real-device debugging) use your computer's LAN address and `gateway serve --host 0.0.0.0`.
module.exports = {
  endpoint: 'http://127.0.0.1:8000/graphql',
  app: 'shop-mp', // a sandbox demo mini-program (also: club-mp, solo-mp)
  // Sandbox gateways emulate WeChat: real wx.login codes and real user-info data mean nothing
  // to them, so the example asks the sandbox for codes and data instead (utils/sandbox-wx.js).
  // Against a gateway with real apps configured, set this to false.
  sandbox: true,
};
