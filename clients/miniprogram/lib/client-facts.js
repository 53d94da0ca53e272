'use strict';

/**
 * The default `client: { platform, channel, deviceParam }` facts the gateway records with
 * every login (risk control): `platform` from the device info API (`ios`, `android`,
 * `devtools`, `windows`, `mac`, ...), `channel` from the launch scene (`1001`, ...),
 * `deviceParam` from model, system and WeChat version. Missing APIs give what they can.
 */
function defaultClientFacts(wx) {
  const device = deviceInfo(wx);
  const base = appBaseInfo(wx);
  const facts = { platform: String(device.platform || 'unknown') };
  const scene = launchScene(wx);
  if (scene !== null) facts.channel = String(scene);
  const param = [device.model, device.system, base.version || device.version]
    .filter((part) => part !== undefined && part !== null && part !== '')
    .join('; ');
  if (param) facts.deviceParam = param.slice(0, 200);
  return facts;
}

/** wx.getDeviceInfo (base library 2.20.1+), else the deprecated wx.getSystemInfoSync. */
function deviceInfo(wx) {
  return tryCall(wx, 'getDeviceInfo') || tryCall(wx, 'getSystemInfoSync') || {};
}

/** wx.getAppBaseInfo carries the WeChat `version`; getSystemInfoSync had it too. */
function appBaseInfo(wx) {
  return tryCall(wx, 'getAppBaseInfo') || {};
}

/**
 * The person's WeChat language as an `Accept-Language` tag (`zh_CN` → `zh-CN`), so the
 * gateway's messages come in it: wx.getAppBaseInfo's `language`, else the deprecated
 * wx.getSystemInfoSync's. Null when neither says anything usable.
 */
function defaultLanguage(wx) {
  const language = appBaseInfo(wx).language || (tryCall(wx, 'getSystemInfoSync') || {}).language;
  if (typeof language !== 'string' || !/^[A-Za-z]{2,3}([_-][A-Za-z0-9]{1,8}){0,3}$/.test(language)) {
    return null;
  }
  return language.replace(/_/g, '-');
}

function launchScene(wx) {
  const launch = tryCall(wx, 'getLaunchOptionsSync');
  return launch && launch.scene !== undefined ? launch.scene : null;
}

function tryCall(wx, name) {
  if (!wx || typeof wx[name] !== 'function') return null;
  try {
    return wx[name]() || null;
  } catch (_) {
    return null;
  }
}

/** The facts the gateway takes: `platform` (required) and the optional two, as strings. */
function normalizeFacts(facts) {
  const clean = { platform: String(facts.platform || 'unknown') };
  if (facts.channel !== undefined && facts.channel !== null) clean.channel = String(facts.channel);
  if (facts.deviceParam !== undefined && facts.deviceParam !== null) {
    clean.deviceParam = String(facts.deviceParam);
  }
  return clean;
}

module.exports = { defaultClientFacts, defaultLanguage, normalizeFacts };
