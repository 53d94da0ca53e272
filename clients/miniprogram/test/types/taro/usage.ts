// Taro's `Taro` (its APIs return promises as well as calling back), passed as `wx`.
import Taro from '@tarojs/taro';
import { createGatewayClient } from 'wechat-identity-gateway-miniprogram';
import { firstScreen } from '../shared';

const gw = createGatewayClient({ endpoint: 'https://id.example.com/graphql', app: 'shop-mp', wx: Taro });

export function onGetPhoneNumber(e: { detail: { errMsg: string; code?: string; errno?: number } }) {
  return firstScreen(gw, e.detail);
}
