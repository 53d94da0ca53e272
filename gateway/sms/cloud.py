"""What the cloud SMS adapters (``aliyun``, ``tencent``) share and that needs no HTTP: reading
their keys from the environment, choosing a template per locale, and keeping the one-time
code out of any text an operator may read.

It lives apart from the adapters so that the import contract can keep HTTP (httpx) in exactly
the two adapter modules while the helpers stay testable on their own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.sms.provider import SmsRejected

TIMEOUT_SECONDS = 5.0
"""A send is on the path of a person waiting for a code: a provider slower than this is, for
that person, down; the use case answers ``UPSTREAM_UNAVAILABLE`` and they may retry."""

RETRY_AFTER_OUTAGE = 30
"""Seconds to suggest after a timeout, a connection error or a 5xx: short, since most
provider hiccups pass quickly, and the use case's own per-phone limits still apply."""


class SmsConfigError(ValueError):
    """A provider's settings cannot work (a key's environment variable is unset or empty):
    raised at start-up by ``from_settings`` so a misconfiguration never waits for the first
    person asking for a code. The message names the variable, never its value."""


@dataclass(frozen=True)
class KeyPair:
    """An access key id and its secret. The secret never shows in ``repr`` (and so in no log
    line or traceback that prints the adapter)."""

    key_id: str
    secret: str = field(repr=False)


def read_key_pair(
    id_env: str, secret_env: str, environ: Mapping[str, str] | None = None
) -> KeyPair:
    """The key pair from the environment variables the config names: keys stay out of config
    files (which are committed and copied around) and in the deployment's secret store."""
    env = os.environ if environ is None else environ
    values = {}
    for name in (id_env, secret_env):
        value = env.get(name, "").strip()
        if not value:
            raise SmsConfigError(f"environment variable {name} is unset or empty")
        values[name] = value
    return KeyPair(values[id_env], values[secret_env])


def base_url(default: str, env_name: str, environ: Mapping[str, str] | None = None) -> str:
    """The provider's base URL, unless ``env_name`` overrides it (tests and local emulations,
    as ``GATEWAY_WECHAT_API_BASE`` does for WeChat). No trailing slash."""
    env = os.environ if environ is None else environ
    return (env.get(env_name, "").strip() or default).rstrip("/")


def for_locale(locale: str, default: str, per_locale: Mapping[str, str]) -> str:
    """The value configured for ``locale``: an exact match (``zh-CN``, also spelled ``zh_CN``),
    then its language (``zh``), then ``default``. Providers approve templates one by one,
    so a deployment may have a Chinese template only; English then falls back to it."""
    wanted = locale.replace("_", "-")
    normalised = {key.replace("_", "-").lower(): value for key, value in per_locale.items()}
    for candidate in (wanted.lower(), wanted.split("-")[0].lower()):
        if candidate in normalised:
            return normalised[candidate]
    return default


def scrub(text: str, code: str) -> str:
    """``text`` (a provider's error message, which becomes a reason operators read) with the
    one-time code masked, should the provider echo the template parameters back."""
    return text.replace(code, "******") if code else text


def e164(phone: str) -> str:
    """``phone`` as both providers take it in: E.164 (``+`` and digits), else refused before
    any call (the use case normalises numbers; an adapter used directly must not guess)."""
    if not phone.startswith("+") or not phone[1:].isdigit():
        raise SmsRejected("phone number is not in E.164 form")
    return phone
