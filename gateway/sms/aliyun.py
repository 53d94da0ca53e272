"""Aliyun SMS (``dysmsapi``, RPC-style API, version 2017-05-25): ``SendSms`` for one code.

Signing is the RPC signature (``SignatureMethod=HMAC-SHA1``, ``SignatureVersion=1.0``):
Aliyun's "HTTP协议及签名 / 签名机制" page for SMS publishes a worked ``SendSms`` example with
its exact signature, so the signer is tested byte for byte against it
(``tests/test_sms_providers.py``). ``ACS3-HMAC-SHA256`` (V3) is Aliyun's current scheme; moving
to it would change ``rpc_signature`` and its test only, once there is a published vector to
hold it to. The request is a ``POST`` with a form body, not a ``GET`` with the
parameters in the URL, so the code never lands in an access log or a proxy's URL history.

Settings (``[sms.aliyun]``, wired by the config section into ``AliyunSettings``):

- ``sign_name`` (required): the approved 签名 shown as 【…】 in the message.
- ``template_code`` (required): the approved template, e.g. ``SMS_123456789``; its text has
  one variable, ``${code}`` (the adapter sends ``TemplateParam={"code": "…"}``).
- ``sign_names`` / ``template_codes`` (optional tables, locale → value, e.g.
  ``{"en" = "SMS_987654321"}``): per-locale choices; a locale without one falls back to its
  language, then to ``sign_name`` / ``template_code``.
- ``access_key_id_env`` / ``access_key_secret_env``: the names of the environment variables
  that hold the keys (defaults ``ALIYUN_ACCESS_KEY_ID`` / ``ALIYUN_ACCESS_KEY_SECRET``); keys
  never sit in the config file.
- ``region`` (default ``cn-hangzhou``) and ``endpoint`` (default
  ``https://dysmsapi.aliyuncs.com``); ``GATEWAY_SMS_ALIYUN_BASE`` overrides the endpoint
  (tests, local emulation).
- ``timeout_seconds`` (default 5).

Numbers: a mainland number goes without ``+86`` (``13800138000``), Aliyun's domestic format;
any other goes as country code and number without ``+`` (``85261234567``), its
international format.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.config import SmsModel
from gateway.sms import cloud
from gateway.sms.adapter import CloudAdapter
from gateway.sms.provider import SmsMessage, SmsRejected, SmsUnavailable

log = logging.getLogger(__name__)

BASE_ENV = "GATEWAY_SMS_ALIYUN_BASE"
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com"
API_VERSION = "2017-05-25"

# Aliyun's documented codes (短信服务 "API错误码") that mean "not now" rather than "never":
# its flow control per number/signature, the account's daily/monthly caps set in the console,
# and its own faults. Seconds to suggest waiting; anything else that is not OK is a refusal.
UNAVAILABLE_CODES: Mapping[str, int] = {
    "isv.BUSINESS_LIMIT_CONTROL": 60,  # per-number flow control (1/min, 5/h, 10/day defaults)
    "isv.DAY_LIMIT_CONTROL": 3600,
    "isv.MONTH_LIMIT_CONTROL": 3600,
    "isp.SYSTEM_ERROR": cloud.RETRY_AFTER_OUTAGE,
    "isp.GATEWAY_ERROR": cloud.RETRY_AFTER_OUTAGE,
    "ServiceUnavailable": cloud.RETRY_AFTER_OUTAGE,
    "InternalError": cloud.RETRY_AFTER_OUTAGE,
}


@dataclass(frozen=True)
class AliyunSettings:
    """The ``[sms.aliyun]`` table; see the module docstring for each field."""

    sign_name: str
    template_code: str
    sign_names: Mapping[str, str] = field(default_factory=dict)
    template_codes: Mapping[str, str] = field(default_factory=dict)
    access_key_id_env: str = "ALIYUN_ACCESS_KEY_ID"
    access_key_secret_env: str = "ALIYUN_ACCESS_KEY_SECRET"
    region: str = "cn-hangzhou"
    endpoint: str = DEFAULT_ENDPOINT
    timeout_seconds: float = cloud.TIMEOUT_SECONDS


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun's signature wants it: only ``A-Z a-z 0-9 - _ . ~`` stay,
    a space is ``%20`` (not ``+``), UTF-8 bytes as ``%XY``."""
    return urllib.parse.quote(value, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    """The parameters sorted by name, each ``name=value`` percent-encoded, joined by ``&``."""
    return "&".join(f"{percent_encode(k)}={percent_encode(params[k])}" for k in sorted(params))


def rpc_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """Base64 of HMAC-SHA1 over ``METHOD&%2F&encode(canonical query)``, keyed with the secret
    followed by ``&``: Aliyun's RPC signature (``SignatureVersion=1.0``)."""
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def aliyun_phone(e164: str) -> str:
    """Aliyun's number format: mainland without ``+86``, others as digits with country code."""
    phone = cloud.e164(e164)
    return phone[3:] if phone.startswith("+86") else phone[1:]


def _timestamp(now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


class AliyunSms(CloudAdapter[AliyunSettings]):
    """``SmsProvider`` for Aliyun SMS. Takes the app's shared ``httpx.AsyncClient`` (pooled
    connections built in the lifespan); every call carries its own timeout, so a client built
    without one still cannot hang a login."""

    name = "aliyun"

    def __init__(
        self,
        settings: AliyunSettings,
        keys: cloud.KeyPair,
        client: httpx.AsyncClient,
        *,
        base_url: str = DEFAULT_ENDPOINT,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        super().__init__(settings, keys, client, base_url=base_url, clock=clock)
        self._nonce = nonce

    @classmethod
    def from_settings(
        cls,
        settings: AliyunSettings,
        client: httpx.AsyncClient,
        environ: Mapping[str, str] | None = None,
    ) -> AliyunSms:
        """The adapter as configured: keys read from the named environment variables now
        (a missing one is a ``SmsConfigError`` at start-up), base URL from
        ``GATEWAY_SMS_ALIYUN_BASE`` or the settings."""
        keys = cloud.read_key_pair(
            settings.access_key_id_env, settings.access_key_secret_env, environ
        )
        url = cloud.base_url(settings.endpoint, BASE_ENV, environ)
        return cls(settings, keys, client, base_url=url)

    def signed_params(self, message: SmsMessage) -> dict[str, str]:
        """The request's parameters, ``Signature`` included (public for the tests, which check
        a request is well-formed without a network)."""
        settings = self._settings
        params = {
            "AccessKeyId": self._keys.key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "PhoneNumbers": aliyun_phone(message.phone),
            "RegionId": settings.region,
            "SignName": cloud.for_locale(message.locale, settings.sign_name, settings.sign_names),
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "TemplateCode": cloud.for_locale(
                message.locale, settings.template_code, settings.template_codes
            ),
            "TemplateParam": json.dumps({"code": message.code}, separators=(",", ":")),
            "Timestamp": _timestamp(self._clock()),
            "Version": API_VERSION,
        }
        params["Signature"] = rpc_signature("POST", params, self._keys.secret)
        return params

    async def send(self, message: SmsMessage) -> None:
        """Send one code; returns when Aliyun accepted it (``Code: OK``)."""
        body = canonical_query(self.signed_params(message))
        try:
            response = await self._client.post(
                self._url,
                content=body.encode("ascii"),
                headers={"content-type": "application/x-www-form-urlencoded"},
                timeout=self._timeout,
            )
        except httpx.TimeoutException:
            log.warning("aliyun SendSms: timeout")
            raise SmsUnavailable("aliyun: timeout", cloud.RETRY_AFTER_OUTAGE) from None
        except httpx.TransportError as error:
            log.warning("aliyun SendSms: %s", type(error).__name__)
            raise SmsUnavailable("aliyun: connection failed", cloud.RETRY_AFTER_OUTAGE) from None
        outcome(response.status_code, _json(response), message.code)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def outcome(status: int, answer: Any, code: str = "") -> None:
    """Aliyun's answer as an outcome: return on ``OK``; ``SmsUnavailable`` for flow control,
    its faults, a 5xx or an answer it would never give (a broken proxy looks like an outage);
    ``SmsRejected`` with Aliyun's code and message for anything else (bad number, template,
    signature, keys): retrying those cannot help, and operators need the code to fix them."""
    result = answer.get("Code") if isinstance(answer, dict) else None
    if not isinstance(result, str):
        log.warning("aliyun SendSms: unexpected answer (HTTP %s)", status)
        raise SmsUnavailable(f"aliyun: unexpected answer (HTTP {status})", cloud.RETRY_AFTER_OUTAGE)
    request_id = answer.get("RequestId", "")
    if result == "OK" and status == 200:
        return
    message = cloud.scrub(str(answer.get("Message", "")), code)
    log.warning("aliyun SendSms: %s (HTTP %s, request %s)", result, status, request_id)
    if result in UNAVAILABLE_CODES:
        raise SmsUnavailable(f"aliyun: {result}: {message}", UNAVAILABLE_CODES[result])
    if result.startswith("Throttling") or status >= 500:
        raise SmsUnavailable(f"aliyun: {result}: {message}", cloud.RETRY_AFTER_OUTAGE)
    raise SmsRejected(f"aliyun: {result}: {message}")


def provider(settings: SmsModel) -> AliyunSms:
    """``[sms] provider = "aliyun"``: the adapter from ``[sms.aliyun]`` (its keys read now from
    the environment variables it names: a missing one stops start-up), with an HTTP client of
    its own, which :meth:`AliyunSms.aclose` closes at shutdown."""
    table = settings.aliyun.model_dump() if settings.aliyun else {}
    return AliyunSms.from_settings(AliyunSettings(**table), httpx.AsyncClient())
