"""SMS one-time codes: send one to a number, redeem it. Logging in with it and binding the
number to an account are ``gateway.rights.sms_login``'s: the number's place in the account
graph follows the one rule every way of proving a phone shares.

No enumeration: a request for a well-formed, allowed number answers the same whether any
account holds it, another one or none; what the number is for shows only once its owner has
typed the code.
"""

from __future__ import annotations

import logging

from gateway import phones
from gateway.audit import ClientInfo
from gateway.config import GatewayConfig
from gateway.errors import (
    N_,
    InvalidCode,
    InvalidInput,
    RateLimited,
    TemporarilyUnavailable,
    UnknownApp,
    UpstreamError,
    UpstreamUnavailable,
    declares,
)
from gateway.i18n import DEFAULT_LOCALE
from gateway.metrics import SMS_CODES
from gateway.sms.captcha import CaptchaCheck
from gateway.sms.codes import CodeStore, Purpose
from gateway.sms.limits import SmsLimits
from gateway.sms.provider import SmsMessage, SmsProvider, SmsRejected, SmsUnavailable

log = logging.getLogger(__name__)
WRONG_CODE = N_("The SMS code is wrong, used or expired; request a new one.")


class SmsCodes:
    def __init__(
        self,
        config: GatewayConfig,
        provider: SmsProvider | None,
        store: CodeStore,
        limits: SmsLimits,
        captcha: CaptchaCheck,
    ) -> None:
        self._config = config
        self._provider = provider
        self._store = store
        self._limits = limits
        self._captcha = captcha

    @declares(
        UnknownApp,
        InvalidInput,
        RateLimited,
        TemporarilyUnavailable,
        UpstreamUnavailable,
        UpstreamError,
    )
    async def request(
        self,
        app_key: str | None,
        raw_phone: str,
        purpose: Purpose,
        client: ClientInfo,
        captcha_ticket: str | None = None,
        locale: str = DEFAULT_LOCALE,
    ) -> None:
        """Send a new code to the number, after the captcha hook and the limits; ``locale``:
        the language of the text (the requester's). ``app_key`` None: the gateway's own
        hosted login page asks (``gateway.web.sms``), under the same limits."""
        provider = self._ready(app_key)
        phone = phones.normalise(raw_phone)
        self._limits.check_country(phone)
        if not await self._captcha.passed(captcha_ticket, client):
            SMS_CODES.labels("captcha").inc()
            raise InvalidInput("captcha_ticket", "The captcha was not solved; solve it again.")
        await self._limits.spend(phone, client.ip or "unknown")
        code = await self._store.issue(phone, purpose, client, app_key)
        minutes = self._config.sms.code_ttl_seconds // 60
        await _send(provider, SmsMessage(phone, code, locale, minutes))
        SMS_CODES.labels("sent").inc()

    def _ready(self, app_key: str | None) -> SmsProvider:
        if app_key is not None and self._config.app(app_key) is None:
            raise UnknownApp("No app is configured with key %(key)s.", key=repr(app_key[:64]))
        if self._provider is None:
            raise InvalidInput("phone", "This gateway sends no SMS ([sms] provider is not set).")
        return self._provider

    @declares(InvalidInput, InvalidCode)
    async def redeem(self, raw_phone: str, purpose: Purpose, code: str) -> str:
        """The number (E.164) the right ``code`` proves; the code is spent. A wrong, used,
        expired or dead code (``max_attempts`` wrong tries) is ``INVALID_CODE``, all alike."""
        phone = phones.normalise(raw_phone)
        if not (len(code) == 6 and code.isascii() and code.isdigit()):
            raise InvalidCode(WRONG_CODE)
        if not await self._store.redeem(phone, purpose, code):
            raise InvalidCode(WRONG_CODE)
        return phone


async def _send(provider: SmsProvider, message: SmsMessage) -> None:
    """The provider's outcome in the gateway's terms: an outage may be retried later
    (``UPSTREAM_UNAVAILABLE`` with ``retryAfterSeconds``), a refusal may not."""
    try:
        await provider.send(message)
    except SmsUnavailable as exc:
        SMS_CODES.labels("provider_unavailable").inc()
        log.warning("SMS provider %s unavailable: %s", provider.name, exc.reason)
        error = UpstreamUnavailable("The SMS provider is unavailable; try again shortly.")
        error.retry_after = exc.retry_after
        raise error from None
    except SmsRejected as exc:
        SMS_CODES.labels("provider_rejected").inc()
        log.error("SMS provider %s refused a message: %s", provider.name, exc.reason)
        raise UpstreamError("The SMS provider refused to send this code.") from None
