'use strict';

/**
 * Every failure the SDK reports is a GatewayError with a stable `code`:
 *
 * - a typed GraphQL failure: the `code` of the union's Error member (`PHONE_CONFLICT`, ...);
 * - a refused bearer token after the one renewal: `TOKEN_EXPIRED` or `INVALID_TOKEN`;
 * - another GraphQL error: its `extensions.code` (`UNAVAILABLE`, ...) or `GRAPHQL_ERROR`;
 * - `NETWORK_ERROR` (wx.request failed), `HTTP_ERROR` (an answer that is not GraphQL);
 * - `WX_LOGIN_FAILED` (wx.login failed), `USER_DENIED` (the user refused a button);
 * - `SESSION_EXPIRED` from bindUnionId: ask for the user info again.
 */
class GatewayError extends Error {
  /**
   * @param {string} code stable, machine-readable reason
   * @param {string} message for people
   * @param {object} [extra] optional `status`, `typename`, `errors`, `data`, `cause`
   */
  constructor(code, message, extra) {
    super(message);
    this.name = 'GatewayError';
    this.code = code;
    if (extra) {
      Object.keys(extra).forEach((key) => {
        if (extra[key] !== undefined) this[key] = extra[key];
      });
    }
  }
}

/** True for a GatewayError (also across copies of the SDK: checks the name and code). */
function isGatewayError(value) {
  return Boolean(value) && value.name === 'GatewayError' && typeof value.code === 'string';
}

module.exports = { GatewayError, isGatewayError };
