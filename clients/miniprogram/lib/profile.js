'use strict';

const { GatewayError } = require('./errors');
const { parseBody, transportError } = require('./transport');
const { wxCall, isTimeout, errMsgOf } = require('./wx-call');

/** Nicknames: the gateway's rule (at most 64 characters, no control characters). */
const NICKNAME_MAX = 64;

/** The input of updateProfile, checked as the gateway checks it. */
function checkProfile(profile) {
  const input = {};
  const { nickname, avatarTempPath } = profile;
  if (nickname !== undefined && nickname !== null) {
    if (typeof nickname !== 'string') {
      throw new GatewayError('INVALID_INPUT', 'The nickname is a string ("" clears it)', {
        field: 'nickname',
      });
    }
    if (Array.from(nickname).length > NICKNAME_MAX) {
      throw new GatewayError('INVALID_INPUT', 'The nickname is longer than 64 characters', {
        field: 'nickname',
      });
    }
    if (/[\u0000-\u001f\u007f-\u009f]/.test(nickname)) {
      throw new GatewayError('INVALID_INPUT', 'The nickname has control characters', {
        field: 'nickname',
      });
    }
    input.nickname = nickname;
  }
  if (avatarTempPath !== undefined && avatarTempPath !== null && typeof avatarTempPath !== 'string') {
    throw new GatewayError('INVALID_INPUT', 'avatarTempPath is the chooseAvatar file path', {
      field: 'avatar',
    });
  }
  if (input.nickname === undefined && !avatarTempPath) {
    throw new GatewayError('INVALID_INPUT', 'updateProfile needs a nickname or an avatarTempPath');
  }
  return input;
}

/** The code of an upload's error answer: GraphQL-like errors, or `{ code }`. */
function uploadErrorCode(body) {
  const first = Array.isArray(body.errors) ? body.errors[0] : null;
  if (first && first.extensions && typeof first.extensions.code === 'string') return first.extensions.code;
  if (typeof body.code === 'string') return body.code;
  if (body.error && typeof body.error.code === 'string') return body.error.code;
  return null;
}

function uploadErrorMessage(body) {
  const first = Array.isArray(body.errors) ? body.errors[0] : null;
  if (first && typeof first.message === 'string') return first.message;
  if (typeof body.message === 'string') return body.message;
  if (body.error && typeof body.error.message === 'string') return body.error.message;
  if (typeof body.error === 'string') return body.error;
  return null;
}

/**
 * wx.uploadFile of the picture (multipart field `file`, the bearer token) to
 * `config.avatarUploadUrl` → the gateway's id for it. `authorizedAnswer(send, mayLogin)` is the
 * client's round trip with one renewal on the gateway's 401.
 */
function languageHeader(language, header) {
  if (language) header['Accept-Language'] = language;
  return header;
}

async function uploadAvatar(wx, config, filePath, authorizedAnswer) {
  const send = (token) =>
    wxCall(
      wx,
      'uploadFile',
      {
        url: config.avatarUploadUrl,
        filePath,
        name: 'file',
        header: languageHeader(config.language, { Authorization: 'Bearer ' + token }),
        timeout: config.uploadTimeout,
      },
      config.uploadTimeout
    ).then(
      (res) => ({ status: res.statusCode, body: parseBody(res.data), header: res.header || {} }),
      (failure) => {
        if (isTimeout(failure)) throw transportError('The avatar upload', failure);
        throw new GatewayError('UPLOAD_FAILED', 'wx.uploadFile failed: ' + errMsgOf(failure), {
          cause: failure,
        });
      }
    );
  const answer = await authorizedAnswer(send, true);
  const body = answer.body || {};
  const id = body.avatar || body.id;
  if (answer.status >= 200 && answer.status < 300 && typeof id === 'string') return id;
  const code = uploadErrorCode(body);
  const message = uploadErrorMessage(body) || 'The avatar upload was answered HTTP ' + answer.status;
  throw new GatewayError(code || 'HTTP_ERROR', message, { status: answer.status });
}

module.exports = { checkProfile, uploadAvatar, NICKNAME_MAX };
