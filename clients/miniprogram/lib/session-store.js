'use strict';

/**
 * The login state, under one storage key, holding only these fields: never a session_key,
 * openid, unionid or user info (the gateway never sends them anyway).
 *
 * `expiresAt` and `refreshExpiresAt` are epoch milliseconds on this phone's clock, converted
 * from the gateway's at receipt (see `stateFrom`), so a phone clock that is wrong by an hour
 * or a month judges expiry as the gateway does. An empty `refreshToken` means it may have
 * been spent by a refresh whose answer was lost in the background: never send it again, log
 * in afresh. Storage is read at every use, so
 * pages (and a second client on the same key) see one state; when the platform's storage
 * throws (quota, private mode), the state lives in memory from then on.
 */
const FIELDS = ['accessToken', 'refreshToken', 'expiresAt', 'refreshExpiresAt', 'accountId'];

function createSessionStore(wx, key) {
  let memory = null;
  let storageBroken = false;

  function load() {
    if (storageBroken) return memory;
    try {
      return sanitize(wx.getStorageSync(key));
    } catch (_) {
      storageBroken = true;
      return memory;
    }
  }

  function save(state) {
    memory = sanitize(state);
    if (storageBroken) return memory;
    try {
      wx.setStorageSync(key, memory);
    } catch (_) {
      storageBroken = true;
    }
    return memory;
  }

  function clear() {
    memory = null;
    if (storageBroken) return;
    try {
      wx.removeStorageSync(key);
    } catch (_) {
      storageBroken = true;
    }
  }

  return { load, save, clear };
}

/** The allowed fields of `value` with the right types, or null when it is not a state. */
function sanitize(value) {
  if (!value || typeof value !== 'object') return null;
  const ok =
    typeof value.accessToken === 'string' &&
    typeof value.refreshToken === 'string' &&
    typeof value.expiresAt === 'number' &&
    typeof value.refreshExpiresAt === 'number';
  if (!ok) return null;
  const state = {};
  FIELDS.forEach((field) => {
    state[field] = value[field];
  });
  if (typeof state.accountId !== 'string') state.accountId = null;
  return state;
}

/**
 * Epoch milliseconds of the gateway's DateTime (`2026-11-27T00:11:05.871095+00:00`).
 * Microseconds are cut to milliseconds first: iOS's JavaScriptCore is strict about ISO dates.
 * Unreadable: 0 (treated as expired).
 */
function parseTime(iso) {
  if (typeof iso !== 'string') return 0;
  const ms = Date.parse(iso.replace(/(\.\d{3})\d+/, '$1'));
  return isNaN(ms) ? 0 : ms;
}

/**
 * A state from a LoginSuccess or RefreshSuccess and the answer that carried it. The gateway's
 * times are its clock's: each is moved by (this phone's clock at receipt - the gateway's clock
 * then, from the answer's `Date` header), which turns them into lifetimes taken at receipt
 * on this phone's clock. Without a `Date` header the phone's clock is trusted as it is.
 */
function stateFrom(success, answer) {
  const shift = clockShift(answer);
  const local = (iso) => {
    const ms = parseTime(iso);
    return ms ? ms + shift : 0;
  };
  return {
    accessToken: success.accessToken,
    refreshToken: success.refreshToken,
    expiresAt: local(success.expiresAt),
    refreshExpiresAt: local(success.refreshExpiresAt),
    accountId: success.account ? success.account.id : null,
  };
}

/** This phone's clock minus the gateway's, at the answer's receipt (0 when unknown). */
function clockShift(answer) {
  if (!answer || typeof answer.serverNow !== 'number' || typeof answer.receivedAt !== 'number') {
    return 0;
  }
  return answer.receivedAt - answer.serverNow;
}

module.exports = { createSessionStore, stateFrom, clockShift, parseTime, FIELDS };
