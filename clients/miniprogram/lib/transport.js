'use strict';

const { GatewayError } = require('./errors');
const { wxCall, errMsgOf } = require('./wx-call');

/**
 * One GraphQL POST over `wx.request`. Resolves `{ status, body }` for every HTTP answer
 * (wx.request calls `success` for 401 and 500 too; `body` is the parsed JSON or null);
 * rejects with a NETWORK_ERROR GatewayError only when no answer arrived (`fail`).
 *
 * @param {object} wx
 * @param {{ endpoint: string, timeout?: number }} target
 * @param {{ query: string, variables?: object, operationName?: string }} operation
 * @param {string} [accessToken]
 */
function postGraphQL(wx, target, operation, accessToken) {
  const header = { 'content-type': 'application/json', accept: 'application/json' };
  if (accessToken) header.Authorization = 'Bearer ' + accessToken;
  const options = {
    url: target.endpoint,
    method: 'POST',
    header,
    data: bodyOf(operation),
    dataType: 'json',
  };
  if (target.timeout) options.timeout = target.timeout;
  return wxCall(wx, 'request', options).then(
    (res) => ({ status: res.statusCode, body: parseBody(res.data) }),
    (failure) => {
      throw new GatewayError('NETWORK_ERROR', 'The gateway did not answer: ' + errMsgOf(failure), {
        cause: failure,
      });
    }
  );
}

/** The JSON body of a GraphQL request (no undefined members). */
function bodyOf(operation) {
  const body = { query: operation.query };
  if (operation.variables) body.variables = operation.variables;
  if (operation.operationName) body.operationName = operation.operationName;
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
  const errors = answer.body && answer.body.errors;
  const code = errors && errors[0] && errors[0].extensions && errors[0].extensions.code;
  return code === 'TOKEN_EXPIRED' ? 'TOKEN_EXPIRED' : 'INVALID_TOKEN';
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

module.exports = { postGraphQL, dataOf, tokenErrorCode, parseBody };
