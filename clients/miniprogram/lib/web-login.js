'use strict';

const { GatewayError } = require('./errors');

/** What a wxacode scene may hold: at most 32 visible characters of WeChat's set. */
const SCENE = /^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$/;

/**
 * The scene of a scanned code, checked before anything is sent. Accepts it as the page got
 * it (`options.scene` is URL-encoded by WeChat) or already decoded.
 */
function checkScene(scene) {
  if (typeof scene !== 'string' || !scene) {
    throw new GatewayError('INVALID_INPUT', 'confirmWebLogin needs the scene of the scanned code');
  }
  let decoded = scene;
  try {
    decoded = decodeURIComponent(scene);
  } catch (_) {
    // not URL-encoded: as it is
  }
  if (!SCENE.test(decoded)) throw new GatewayError('INVALID_INPUT', 'That is not a login code\'s scene');
  return decoded;
}

/** The gateway's WebLoginRequest as the SDK hands it out. */
function webLoginRequestOf(result) {
  return {
    status: result.status,
    app: result.app,
    origin: result.origin,
    ip: result.ip,
    userAgent: result.userAgent,
    requestedAt: result.requestedAt,
    expiresAt: result.expiresAt,
  };
}

module.exports = { checkScene, webLoginRequestOf };
