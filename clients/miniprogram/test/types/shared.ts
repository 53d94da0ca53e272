// What every platform's type test does with its client: the whole API under --strict.
import {
  isGatewayError,
  type GatewayClient,
  type GatewayErrorCode,
  type PhoneNumberDetail,
  type WebLoginRequest,
} from 'wechat-identity-gateway-miniprogram';

export async function firstScreen(gw: GatewayClient, phone: PhoneNumberDetail): Promise<string> {
  try {
    const { account, isNewAccount } = await gw.loginWithPhone(phone);
    const profile = await gw.updateProfile({ nickname: 'Ada', avatarTempPath: 'wxfile://tmp/a.png' });
    return `${account.id} ${isNewAccount} ${profile.account.avatarUrl}`;
  } catch (error) {
    if (!isGatewayError(error)) throw error;
    const code: GatewayErrorCode = error.code;
    switch (code) {
      case 'USER_DENIED':
        return 'refused';
      case 'PHONE_UNAVAILABLE':
        return `errno ${error.errno}`;
      case 'PHONE_CONFLICT':
        return 'phone on another account';
      case 'TIMEOUT':
        return 'slow network';
      default:
        return code;
    }
  }
}

/** The confirm page of scan to log in: show what asks, then the person's answer. */
export async function confirmScan(gw: GatewayClient, scene: string, approve: boolean): Promise<string> {
  const asking: WebLoginRequest = await gw.webLoginRequest(scene);
  const answered = await gw.confirmWebLogin(scene, { approve });
  const where: string | null = asking.origin ?? asking.ip;
  return `${asking.app.name} ${where} ${answered.status}`;
}
