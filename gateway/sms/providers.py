"""Which provider sends the codes: ``[sms] provider`` by name. The cloud adapters are imported
only when named (``gateway.sms.aliyun``, ``gateway.sms.tencent``: each module's
``provider(settings)`` builds its ``SmsProvider`` from ``[sms]`` and its own ``[sms.<name>]``
table), so a deployment that never sends SMS never loads an HTTP client for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

from gateway.config import ConfigError, SmsModel
from gateway.sms.provider import SmsProvider
from gateway.sms.sandbox import SandboxSms

CLOUD = ("aliyun", "tencent")


def provider_named(
    name: str | None, settings: SmsModel, clock: Callable[[], float]
) -> SmsProvider | None:
    """The provider called ``name`` (None: SMS is off); a clear ``ConfigError`` when its
    adapter is missing from this build."""
    if name is None:
        return None
    if name == "sandbox":
        return SandboxSms(clock)
    if name not in CLOUD:
        raise ConfigError(f"GATEWAY_CONFIG.sms.provider: unknown provider {name!r}")
    try:
        module = importlib.import_module(f"gateway.sms.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"gateway.sms.{name}":
            raise
        raise ConfigError(
            f"GATEWAY_CONFIG.sms.provider: {name!r} has no adapter in this build"
        ) from None
    build = cast(Callable[[SmsModel], SmsProvider], module.provider)
    try:
        return build(settings)
    except (TypeError, ValueError) as exc:  # a key missing from [sms.<name>] or the environment
        raise ConfigError(f"GATEWAY_CONFIG.sms.{name}: {exc}") from None
