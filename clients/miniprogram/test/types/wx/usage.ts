// The official typings' global `wx` (miniprogram-api-typings), passed as is.
import { createGatewayClient } from 'wechat-identity-gateway-miniprogram';
import { firstScreen } from '../shared';

const gw = createGatewayClient({ endpoint: 'https://id.example.com/graphql', app: 'shop-mp', wx, timeout: 8000 });

Page({
  onGetPhoneNumber(e: WechatMiniprogram.ButtonGetPhoneNumber) {
    return firstScreen(gw, e.detail);
  },
});
