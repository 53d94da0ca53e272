// Type-checked by test/package.test.js (tsc --noEmit, skipLibCheck off): the declarations on
// their own, with the SDK's WxLike as the API object (test/types/{wx,taro,uni} use the real ones).
import {
  createGatewayClient,
  GatewayError,
  isGatewayError,
  type GatewayClient,
  type PhoneNumberDetail,
  type UserInfoDetail,
  type WxLike,
} from 'wechat-identity-gateway-miniprogram';
import { firstScreen } from './shared';

declare const wx: WxLike;

const gw: GatewayClient = createGatewayClient({
  endpoint: 'https://id.example.com/graphql',
  app: 'shop-mp',
  wx,
  storageKey: 'gateway.session',
  client: { channel: 'poster-2026' },
});

interface Viewer {
  viewer: { id: string; nickname: string | null } | null;
}

async function page(userInfo: UserInfoDetail, phone: PhoneNumberDetail): Promise<string> {
  const { account, isNewAccount } = await gw.login();
  const data = await gw.request<Viewer, { first: number }>({
    query: 'query Me { viewer { id nickname } }',
    variables: { first: 1 },
    operationName: 'Me',
  });
  try {
    const bound = await gw.bindUnionId(userInfo);
    const merged: boolean = bound.merged;
    void merged;
  } catch (error) {
    if (error instanceof GatewayError && error.code === 'SESSION_EXPIRED') return error.message;
    if (isGatewayError(error)) return error.code;
  }
  const { linked } = await gw.bindPhoneNumber(phone);
  const stop = gw.onChange(({ loggedIn, accountId }) => console.log(loggedIn, accountId));
  stop();
  const { revokedSessions } = await gw.logout({ everywhere: true });
  const loggedIn: boolean = gw.isLoggedIn();
  return `${account.id} ${isNewAccount} ${data.viewer?.id} ${linked} ${revokedSessions} ${loggedIn}`;
}

void page;
void firstScreen;
