'use strict';

/**
 * Calls a callback-style mini-program API (`wx.login({ success, fail })`, the same in uni-app
 * and Taro) and returns a promise of what `success` got. `fail` rejects with its argument
 * (`{ errMsg, errno? }`), so the caller decides which GatewayError it becomes.
 *
 * - Promise-returning APIs (Taro's `Taro.login` returns a promise besides calling the
 *   callbacks): its rejection is always handled (no unhandled rejection when `fail` was
 *   called as well) and rejects this call if `fail` did not; success comes from `success`.
 * - `timeoutMs` (> 0): a call that neither succeeds nor fails within it rejects with
 *   `{ errMsg: '<name>:fail timeout', timedOut: true }`; a task it returned (wx.request's
 *   RequestTask) is aborted, and a late answer is ignored.
 *
 * @param {object} wx the `wx` (or `uni`, `Taro`) object
 * @param {string} name the API, e.g. 'login'
 * @param {object} [options] the API's options, without the callbacks
 * @param {number} [timeoutMs]
 * @returns {Promise<any>}
 */
function wxCall(wx, name, options, timeoutMs) {
  return new Promise((resolve, reject) => {
    let settled = false;
    let timer = null;
    let returned = null;
    const settle = (outcome) => (value) => {
      if (settled) return;
      settled = true;
      if (timer !== null) clearTimeout(timer);
      outcome(value);
    };
    const success = settle(resolve);
    const fail = settle(reject);
    if (!wx || typeof wx[name] !== 'function') {
      fail({ errMsg: name + ':fail not available on this platform' });
      return;
    }
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        fail({ errMsg: name + ':fail timeout', timedOut: true });
        abortTask(returned);
      }, timeoutMs);
    }
    try {
      returned = wx[name](Object.assign({}, options, { success, fail }));
    } catch (error) {
      fail({ errMsg: name + ':fail ' + ((error && error.message) || String(error)) });
      return;
    }
    if (returned && typeof returned.then === 'function') {
      returned.then(undefined, fail); // handled; success comes from the callback
    }
  });
}

function abortTask(task) {
  if (task && typeof task.abort === 'function') {
    try {
      task.abort();
    } catch (_) {
      // an already finished task may refuse to abort
    }
  }
}

/** The `errMsg` of a failed API call, for messages. */
function errMsgOf(failure) {
  return (failure && failure.errMsg) || String(failure);
}

/** True when a WeChat `errMsg` says success (`'getPhoneNumber:ok'`). */
function isOk(errMsg) {
  return typeof errMsg === 'string' && /:ok$/.test(errMsg);
}

/** A failure that is a timeout: the SDK's own timer, or the platform's (`request:fail timeout`). */
function isTimeout(failure) {
  return Boolean(failure) && (failure.timedOut === true || /timeout|timed out|超时/i.test(failure.errMsg || ''));
}

module.exports = { wxCall, errMsgOf, isOk, isTimeout };
