'use strict';

/**
 * Calls a callback-style mini-program API (`wx.login({ success, fail })`, and the same shape
 * in uni-app) and returns a promise of what `success` got. `fail` rejects with its argument
 * (`{ errMsg }`), so the caller decides which GatewayError it becomes.
 *
 * @param {object} wx the `wx` (or `uni`) object
 * @param {string} name the API, e.g. 'login'
 * @param {object} [options] the API's options, without the callbacks
 * @returns {Promise<any>}
 */
function wxCall(wx, name, options) {
  return new Promise((resolve, reject) => {
    if (!wx || typeof wx[name] !== 'function') {
      reject({ errMsg: name + ':fail not available on this platform' });
      return;
    }
    wx[name](Object.assign({}, options, { success: resolve, fail: reject }));
  });
}

/** The `errMsg` of a failed API call, for messages. */
function errMsgOf(failure) {
  return (failure && failure.errMsg) || String(failure);
}

/** True when a WeChat `errMsg` says success (`'getPhoneNumber:ok'`). */
function isOk(errMsg) {
  return typeof errMsg === 'string' && /:ok$/.test(errMsg);
}

module.exports = { wxCall, errMsgOf, isOk };
