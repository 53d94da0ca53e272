'use strict';

/**
 * wechat-identity-gateway-miniprogram: the mini-program half of the WeChat identity gateway's
 * login practice. See README.md; the API is declared in index.d.ts.
 */
const { createGatewayClient } = require('./gateway-client');
const { GatewayError, isGatewayError } = require('./errors');

module.exports = { createGatewayClient, GatewayError, isGatewayError };
