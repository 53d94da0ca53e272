'use strict';

/**
 * Whether the mini-program is in the foreground, from `wx.onAppHide` / `wx.onAppShow` (also
 * in Taro and uni-app). Without those APIs the app counts as always visible.
 *
 * - `visible()`: shown now;
 * - `hides()`: how many times it was hidden so far (a refresh compares it before and after);
 * - `whenVisible()`: a promise resolved now, or when the app shows again.
 */
function createVisibility(wx) {
  let visible = true;
  let hides = 0;
  const waiters = [];

  function onHide() {
    visible = false;
    hides += 1;
  }

  function onShow() {
    visible = true;
    waiters.splice(0).forEach((resolve) => resolve());
  }

  if (wx && typeof wx.onAppHide === 'function' && typeof wx.onAppShow === 'function') {
    try {
      wx.onAppHide(onHide);
      wx.onAppShow(onShow);
    } catch (_) {
      // a platform that declares them but cannot listen: always visible
    }
  }

  return {
    visible: () => visible,
    hides: () => hides,
    whenVisible: () => (visible ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve))),
  };
}

module.exports = { createVisibility };
