// uni-app's global `uni` (@dcloudio/types), passed as `wx`.
import { createGatewayClient } from 'wechat-identity-gateway-miniprogram';
import { firstScreen } from '../shared';

const gw = createGatewayClient({ endpoint: 'https://id.example.com/graphql', app: 'shop-mp', wx: uni });

export function onGetPhoneNumber(e: { detail: { errMsg: string; code?: string; errno?: number } }) {
  return firstScreen(gw, e.detail);
}
