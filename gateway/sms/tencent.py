"""Tencent Cloud SMS (API 3.0, ``sms``, version 2021-01-11): ``SendSms`` for one code.

Signing is TC3-HMAC-SHA256 (Tencent Cloud's "Signature v3" / "签名方法 v3"); the signer is
tested against both editions of that page's worked example (``DescribeInstances`` on CVM,
timestamp 1551113065: the published canonical request, its hash, the derived key and the
signature). The adapter signs ``content-type``, ``host`` and ``x-tc-action``, as the current
edition does, so the action cannot be swapped under a captured signature.

Settings (``[sms.tencent]``, wired by the config section into ``TencentSettings``):

- ``sdk_app_id`` (required): the SMS application's ``SmsSdkAppId`` (``1400…``).
- ``sign_name`` (required): the approved 签名 content (domestic numbers need it).
- ``template_id`` (required): the approved template id; its text has one variable, ``{1}``
  (the adapter sends ``TemplateParamSet=[code]``).
- ``sign_names`` / ``template_ids`` (optional tables, locale → value): per-locale choices; a
  locale without one falls back to its language, then to ``sign_name`` / ``template_id``.
- ``secret_id_env`` / ``secret_key_env``: the names of the environment variables holding the
  keys (defaults ``TENCENTCLOUD_SECRET_ID`` / ``TENCENTCLOUD_SECRET_KEY``, the SDKs' names).
- ``region`` (default ``ap-guangzhou``; also ``ap-beijing``, ``ap-nanjing``) and ``endpoint``
  (default ``https://sms.tencentcloudapi.com``); ``GATEWAY_SMS_TENCENT_BASE`` overrides the
  endpoint (tests, local emulation).
- ``timeout_seconds`` (default 5).

Numbers go in E.164 (``+8613800138000``), as Tencent asks for every country.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.config import SmsModel
from gateway.sms import cloud
from gateway.sms.adapter import CloudAdapter
from gateway.sms.provider import SmsMessage, SmsRejected, SmsUnavailable

log = logging.getLogger(__name__)

BASE_ENV = "GATEWAY_SMS_TENCENT_BASE"
DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com"
API_VERSION = "2021-01-11"
SERVICE = "sms"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"

# Tencent's documented SMS limits (错误码: LimitExceeded.*) with the wait each implies;
# another ``LimitExceeded.*``, ``RequestLimitExceeded*`` or ``InternalError*`` is "not now"
# too. Everything else (FailedOperation.*, InvalidParameterValue.*, AuthFailure.*,
# UnauthorizedOperation.*, ...) is a refusal retrying cannot fix.
LIMIT_WAITS: Mapping[str, int] = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30,
    "LimitExceeded.DeliveryFrequencyLimit": 60,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600,
    "LimitExceeded.PhoneNumberDailyLimit": 3600,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": 3600,
    "LimitExceeded.AppDailyLimit": 3600,
    "LimitExceeded.DailyLimit": 3600,
}
UNAVAILABLE_PREFIXES: Mapping[str, int] = {
    "LimitExceeded": 60,
    "RequestLimitExceeded": 5,
    "InternalError": cloud.RETRY_AFTER_OUTAGE,
    "ResourceUnavailable": cloud.RETRY_AFTER_OUTAGE,
}


@dataclass(frozen=True)
class TencentSettings:
    """The ``[sms.tencent]`` table; see the module docstring for each field."""

    sdk_app_id: str
    sign_name: str
    template_id: str
    sign_names: Mapping[str, str] = field(default_factory=dict)
    template_ids: Mapping[str, str] = field(default_factory=dict)
    secret_id_env: str = "TENCENTCLOUD_SECRET_ID"
    secret_key_env: str = "TENCENTCLOUD_SECRET_KEY"
    region: str = "ap-guangzhou"
    endpoint: str = DEFAULT_ENDPOINT
    timeout_seconds: float = cloud.TIMEOUT_SECONDS


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def canonical_request(headers: Mapping[str, str], payload: bytes, method: str = "POST") -> str:
    """Step 1: method, URI ``/``, empty query, the signed headers (lower-case names, trimmed
    lower-case values, sorted) and the payload's SHA-256, one per line."""
    signed = sorted((name.lower(), value.strip().lower()) for name, value in headers.items())
    lines = "".join(f"{name}:{value}\n" for name, value in signed)
    names = ";".join(name for name, _ in signed)
    return f"{method}\n/\n\n{lines}\n{names}\n{_sha256_hex(payload)}"


def credential_scope(timestamp: int, service: str) -> str:
    """``date/service/tc3_request``, the date in UTC (never local time: a UTC+8 clock would
    sign with tomorrow's date for eight hours a day)."""
    day = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC).strftime("%Y-%m-%d")
    return f"{day}/{service}/tc3_request"


def string_to_sign(timestamp: int, service: str, canonical: str) -> str:
    """Step 2: algorithm, timestamp, credential scope, SHA-256 of the canonical request."""
    scope = credential_scope(timestamp, service)
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{_sha256_hex(canonical.encode())}"


def signing_key(secret_key: str, day: str, service: str) -> bytes:
    """Step 3, first half: the key derived through date, service and ``tc3_request``
    (``SecretSigning``), so a leaked signature is worth one day of one service only."""
    return _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), day), service), "tc3_request")


def signature(secret_key: str, timestamp: int, service: str, to_sign: str) -> str:
    """Step 3: HMAC-SHA256 of the string to sign with the derived key, in hex."""
    day = credential_scope(timestamp, service).split("/")[0]
    key = signing_key(secret_key, day, service)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(
    secret_id: str,
    secret_key: str,
    service: str,
    headers: Mapping[str, str],
    payload: bytes,
    timestamp: int,
) -> str:
    """Step 4: the ``Authorization`` header value for a POST to ``/`` with these signed
    ``headers`` (at least ``content-type`` and ``host``)."""
    canonical = canonical_request(headers, payload)
    signed = signature(
        secret_key, timestamp, service, string_to_sign(timestamp, service, canonical)
    )
    names = ";".join(sorted(name.lower() for name in headers))
    scope = credential_scope(timestamp, service)
    return f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={names}, Signature={signed}"


tencent_phone = cloud.e164  # Tencent takes E.164 as it is


class TencentSms(CloudAdapter[TencentSettings]):
    """``SmsProvider`` for Tencent Cloud SMS. Takes the app's shared ``httpx.AsyncClient``;
    every call carries its own timeout."""

    name = "tencent"

    def __init__(
        self,
        settings: TencentSettings,
        keys: cloud.KeyPair,
        client: httpx.AsyncClient,
        *,
        base_url: str = DEFAULT_ENDPOINT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(settings, keys, client, base_url=base_url, clock=clock)
        self._host = urllib.parse.urlsplit(self._url).netloc

    @classmethod
    def from_settings(
        cls,
        settings: TencentSettings,
        client: httpx.AsyncClient,
        environ: Mapping[str, str] | None = None,
    ) -> TencentSms:
        """The adapter as configured: keys read from the named environment variables now
        (a missing one is a ``SmsConfigError`` at start-up), base URL from
        ``GATEWAY_SMS_TENCENT_BASE`` or the settings."""
        keys = cloud.read_key_pair(settings.secret_id_env, settings.secret_key_env, environ)
        url = cloud.base_url(settings.endpoint, BASE_ENV, environ)
        return cls(settings, keys, client, base_url=url)

    def signed_request(self, message: SmsMessage) -> tuple[dict[str, str], bytes]:
        """The request's headers and body (public for the tests)."""
        settings = self._settings
        body = {
            "PhoneNumberSet": [tencent_phone(message.phone)],
            "SmsSdkAppId": settings.sdk_app_id,
            "SignName": cloud.for_locale(message.locale, settings.sign_name, settings.sign_names),
            "TemplateId": cloud.for_locale(
                message.locale, settings.template_id, settings.template_ids
            ),
            "TemplateParamSet": [message.code],
        }
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(self._clock())
        signed = {"content-type": CONTENT_TYPE, "host": self._host, "x-tc-action": "SendSms"}
        auth = authorization(
            self._keys.key_id, self._keys.secret, SERVICE, signed, payload, timestamp
        )
        headers = {
            "Authorization": auth,
            "Content-Type": CONTENT_TYPE,
            "Host": self._host,
            "X-TC-Action": "SendSms",
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": API_VERSION,
            "X-TC-Region": settings.region,
        }
        return headers, payload

    async def send(self, message: SmsMessage) -> None:
        """Send one code; returns when Tencent accepted it (status ``Ok`` for the number)."""
        headers, payload = self.signed_request(message)
        try:
            response = await self._client.post(
                self._url, content=payload, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException:
            log.warning("tencent SendSms: timeout")
            raise SmsUnavailable("tencent: timeout", cloud.RETRY_AFTER_OUTAGE) from None
        except httpx.TransportError as error:
            log.warning("tencent SendSms: %s", type(error).__name__)
            raise SmsUnavailable("tencent: connection failed", cloud.RETRY_AFTER_OUTAGE) from None
        outcome(response.status_code, _json(response), message.code)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _verdict(answer: Any) -> tuple[str, str, str] | None:
    """(code, message, request id) from an answer: the call's ``Error``, else the one
    number's status in ``SendStatusSet``; ``None`` for an answer Tencent would never give."""
    response = answer.get("Response") if isinstance(answer, dict) else None
    if not isinstance(response, dict):
        return None
    request_id = str(response.get("RequestId", ""))
    error = response.get("Error")
    statuses = response.get("SendStatusSet")
    if isinstance(error, dict):
        found: Any = error
    elif isinstance(statuses, list) and statuses and isinstance(statuses[0], dict):
        found = statuses[0]
    else:
        return None
    code = found.get("Code")
    if not isinstance(code, str):
        return None
    return code, str(found.get("Message", "")), request_id


def failure(code: str, message: str) -> SmsUnavailable | SmsRejected:
    """A Tencent error code as an outcome (see ``LIMIT_WAITS`` and ``UNAVAILABLE_PREFIXES``)."""
    reason = f"tencent: {code}: {message}"
    if code in LIMIT_WAITS:
        return SmsUnavailable(reason, LIMIT_WAITS[code])
    family = code.split(".")[0]
    if family in UNAVAILABLE_PREFIXES:
        return SmsUnavailable(reason, UNAVAILABLE_PREFIXES[family])
    return SmsRejected(reason)


def outcome(status: int, answer: Any, code: str = "") -> None:
    """Tencent's answer as an outcome: return when the number's status is ``Ok``;
    ``SmsUnavailable`` for limits, its faults, a 5xx or a malformed answer (a broken proxy
    looks like an outage); ``SmsRejected`` with Tencent's code and message otherwise."""
    verdict = _verdict(answer) if status < 500 else None
    if verdict is None:
        log.warning("tencent SendSms: unexpected answer (HTTP %s)", status)
        raise SmsUnavailable(
            f"tencent: unexpected answer (HTTP {status})", cloud.RETRY_AFTER_OUTAGE
        )
    result, message, request_id = verdict
    if result == "Ok":
        return
    log.warning("tencent SendSms: %s (HTTP %s, request %s)", result, status, request_id)
    raise failure(result, cloud.scrub(message, code))


def provider(settings: SmsModel) -> TencentSms:
    """``[sms] provider = "tencent"``: the adapter from ``[sms.tencent]`` (its keys read now from
    the environment variables it names: a missing one stops start-up), with an HTTP client of
    its own, which :meth:`TencentSms.aclose` closes at shutdown."""
    table = settings.tencent.model_dump() if settings.tencent else {}
    return TencentSms.from_settings(TencentSettings(**table), httpx.AsyncClient())
