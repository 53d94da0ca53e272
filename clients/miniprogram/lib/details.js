'use strict';

const { GatewayError } = require('./errors');
const { isOk } = require('./wx-call');

/** The detail of wx.getUserInfo or its button: a refusal is USER_DENIED. */
function checkUserInfoDetail(detail) {
  if (detail && detail.errMsg && !isOk(detail.errMsg)) {
    throw new GatewayError('USER_DENIED', 'The user did not share the user info: ' + detail.errMsg);
  }
  if (!detail || !detail.encryptedData || !detail.iv) {
    throw new GatewayError('INVALID_INPUT', 'bindUnionId needs the detail of wx.getUserInfo');
  }
}

/**
 * The getPhoneNumber button's detail: USER_DENIED only when the user refused (deny, cancel);
 * any other failure (no permission, quota used up, privacy scope not declared or agreed, ...)
 * is PHONE_UNAVAILABLE with WeChat's `errno` and `errMsg`: not the user's doing.
 */
function checkPhoneDetail(detail) {
  if (!detail || typeof detail.errMsg !== 'string') {
    throw new GatewayError('INVALID_INPUT', 'Pass the getPhoneNumber button\'s event detail');
  }
  if (!isOk(detail.errMsg)) {
    if (/\b(deny|denied|cancel|cancelled|canceled)\b/i.test(detail.errMsg)) {
      throw new GatewayError('USER_DENIED', 'The user did not share the phone number: ' + detail.errMsg);
    }
    throw new GatewayError('PHONE_UNAVAILABLE', 'WeChat did not give the phone number: ' + detail.errMsg, {
      errno: typeof detail.errno === 'number' ? detail.errno : undefined,
      errMsg: detail.errMsg,
    });
  }
  if (!detail.code) {
    throw new GatewayError(
      'INVALID_INPUT',
      'The getPhoneNumber detail has no code (it needs base library 2.21.2 or later)'
    );
  }
}

module.exports = { checkUserInfoDetail, checkPhoneDetail };
