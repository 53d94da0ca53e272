'use strict';

/**
 * Single flight: while a call of `run` is pending, every other call gets the same promise.
 * Once it settles (either way) the next call starts afresh.
 *
 * @template T
 * @param {() => Promise<T>} run
 * @returns {() => Promise<T>}
 */
function singleFlight(run) {
  let pending = null;
  return function shared() {
    if (!pending) {
      const clear = () => {
        pending = null;
      };
      pending = Promise.resolve().then(run);
      pending.then(clear, clear);
    }
    return pending;
  };
}

module.exports = { singleFlight };
