'use strict';

const { GatewayError } = require('./errors');
const { wxCall, errMsgOf, isTimeout } = require('./wx-call');
const { sha256 } = require('./sha256');
const documents = require('./documents');

/**
 * One GraphQL POST over `wx.request`. Resolves `{ status, body, header, receivedAt, serverNow }`
 * for every HTTP answer (wx.request calls `success` for 401 and 500 too; `body` is the parsed
 * JSON or null; `receivedAt` is this phone's clock at receipt and `serverNow` the gateway's,
 * from the `Date` header, or null); rejects with a TIMEOUT GatewayError when no answer came
 * within `target.timeout`, and NETWORK_ERROR for other failures (`fail`).
 *
 * @param {object} wx
 * @param {{ endpoint: string, timeout?: number }} target
 * @param {{ query: string, variables?: object, operationName?: string }} operation
 * @param {string} [accessToken]
 */
function postGraphQL(wx, target, operation, accessToken) {
  const hash = sdkDocumentHash(operation.query);
  const persisted = target.persisted;
  const hashOnly = Boolean(hash && persisted && !persisted.off && !persisted.unknown[hash]);
  const send = (withText) => sendGraphQL(wx, target, bodyOf(operation, hash, withText, persisted), accessToken);
  if (!hashOnly) return send(true);
  return send(false).then((answer) => {
    const why = hashRefused(answer);
    if (!why) return answer;
    if (why === 'unsupported') persisted.off = true;
    else persisted.unknown[hash] = true;
    return send(true);
  });
}

function sendGraphQL(wx, target, data, accessToken) {
  const header = { 'content-type': 'application/json', accept: 'application/json' };
  if (accessToken) header.Authorization = 'Bearer ' + accessToken;
  if (target.language) header['Accept-Language'] = target.language;
  const options = { url: target.endpoint, method: 'POST', header, data, dataType: 'json' };
  if (target.timeout) options.timeout = target.timeout;
  return wxCall(wx, 'request', options, target.timeout).then(answerOf, (failure) => {
    throw transportError('The gateway', failure);
  });
}

/**
 * Trusted documents: the SDK's own operations (documents.js) are known to the gateway by
 * their SHA-256, so they go as Apollo's `extensions.persistedQuery` without the text. A
 * gateway that does not know the hash (PERSISTED_QUERY_NOT_FOUND) gets the text with it for
 * that document from then on; one that does not take hashes at all (a 400 without data) gets
 * plain text. `target.persisted` is `{ off, unknown }` per client, or absent (always text).
 */
const SDK_DOCUMENTS = Object.keys(documents).map((name) => documents[name]);
const hashes = {};

function sdkDocumentHash(query) {
  if (SDK_DOCUMENTS.indexOf(query) < 0) return null;
  if (!hashes[query]) hashes[query] = sha256(query);
  return hashes[query];
}

/** 'unknown' (this hash), 'unsupported' (no hashes at all), or null (an answer to keep). */
function hashRefused(answer) {
  if (firstErrorCode(answer) === 'PERSISTED_QUERY_NOT_FOUND') return 'unknown';
  const body = answer.body;
  if (answer.status === 400 && (!body || !body.data)) return 'unsupported';
  return null;
}

/** What wx.request's `success` gave, as the SDK reads it. */
function answerOf(res) {
  const header = (res && res.header) || {};
  return {
    status: res.statusCode,
    body: parseBody(res.data),
    header,
    receivedAt: Date.now(),
    serverNow: parseHttpDate(headerOf(header, 'date')),
  };
}

/** TIMEOUT or NETWORK_ERROR for a failed wx.request / wx.uploadFile. */
function transportError(who, failure) {
  if (isTimeout(failure)) {
    return new GatewayError('TIMEOUT', who + ' did not answer in time: ' + errMsgOf(failure), {
      cause: failure,
    });
  }
  return new GatewayError('NETWORK_ERROR', who + ' did not answer: ' + errMsgOf(failure), {
    cause: failure,
  });
}

/** A response header by name, whatever its case (wx.request keeps the server's). */
function headerOf(header, name) {
  if (!header || typeof header !== 'object') return undefined;
  const wanted = name.toLowerCase();
  const keys = Object.keys(header);
  for (let i = 0; i < keys.length; i += 1) {
    if (keys[i].toLowerCase() === wanted) return header[keys[i]];
  }
  return undefined;
}

/** Epoch ms of an HTTP date (`Sun, 06 Dec 2026 19:56:11 GMT`), or null. */
function parseHttpDate(value) {
  if (typeof value !== 'string' || !value) return null;
  const ms = Date.parse(value);
  return isNaN(ms) ? null : ms;
}

/**
 * A 401 the SDK may renew the token for: the gateway's RFC 6750 challenge
 * (`WWW-Authenticate: Bearer ...`) or its token codes in the body. A proxy's plain 401 is not
 * (renewing would spend a refresh token on a problem the token cannot fix).
 */
function isTokenRejection(answer) {
  if (answer.status !== 401) return false;
  const challenge = headerOf(answer.header, 'www-authenticate');
  if (typeof challenge === 'string' && /^\s*Bearer\b/i.test(challenge)) return true;
  const code = firstErrorCode(answer);
  return code === 'TOKEN_EXPIRED' || code === 'INVALID_TOKEN';
}

function firstErrorCode(answer) {
  const errors = answer.body && answer.body.errors;
  const first = Array.isArray(errors) && errors[0];
  return (first && first.extensions && first.extensions.code) || null;
}

/** The JSON body of a GraphQL request (no undefined members), with or without the text. */
function bodyOf(operation, hash, withText, persisted) {
  const body = {};
  if (withText) body.query = operation.query;
  if (operation.variables) body.variables = operation.variables;
  if (operation.operationName) body.operationName = operation.operationName;
  if (hash && persisted && !persisted.off) {
    body.extensions = { persistedQuery: { version: 1, sha256Hash: hash } };
  }
  return body;
}

/** wx.request parses JSON already; a string means it could not (or dataType was text). */
function parseBody(data) {
  if (data && typeof data === 'object') return data;
  if (typeof data !== 'string' || !data) return null;
  try {
    const parsed = JSON.parse(data);
    return parsed && typeof parsed === 'object' ? parsed : null;
  } catch (_) {
    return null;
  }
}

/** The `extensions.code` of a 401 answer's first error, or INVALID_TOKEN. */
function tokenErrorCode(answer) {
  return firstErrorCode(answer) === 'TOKEN_EXPIRED' ? 'TOKEN_EXPIRED' : 'INVALID_TOKEN';
}

/**
 * The `data` of an answer, or a GatewayError: GraphQL errors (first one's `extensions.code`,
 * else GRAPHQL_ERROR), a non-GraphQL answer (HTTP_ERROR), or a top-level field answering a
 * union's Error member (its `code`; the SDK's own operations always ask for `__typename`).
 */
function dataOf(answer) {
  const body = answer.body;
  if (body && Array.isArray(body.errors) && body.errors.length) throw graphQLError(answer);
  if (!body || !body.data || answer.status < 200 || answer.status >= 300) {
    throw new GatewayError('HTTP_ERROR', 'The gateway answered HTTP ' + answer.status, {
      status: answer.status,
    });
  }
  const failure = typedFailure(body.data);
  if (failure) throw failure;
  return body.data;
}

function graphQLError(answer) {
  const first = answer.body.errors[0] || {};
  const code = (first.extensions && first.extensions.code) || 'GRAPHQL_ERROR';
  return new GatewayError(code, first.message || 'GraphQL error', {
    status: answer.status,
    errors: answer.body.errors,
    data: answer.body.data || undefined,
  });
}

/** A GatewayError for the first top-level field that is an Error member, or null. */
function typedFailure(data) {
  const names = Object.keys(data);
  for (let i = 0; i < names.length; i += 1) {
    const value = data[names[i]];
    if (isErrorMember(value)) {
      return new GatewayError(value.code, value.message || value.code, {
        typename: value.__typename,
        field: value.field,
        retryAfterSeconds: value.retryAfterSeconds,
      });
    }
  }
  return null;
}

function isErrorMember(value) {
  return (
    Boolean(value) &&
    typeof value.__typename === 'string' &&
    /Error$/.test(value.__typename) &&
    typeof value.code === 'string'
  );
}

module.exports = {
  postGraphQL,
  dataOf,
  tokenErrorCode,
  isTokenRejection,
  transportError,
  parseBody,
  parseHttpDate,
  headerOf,
};
