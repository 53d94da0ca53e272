"""What the SMS use case needs of a provider (Aliyun, Tencent Cloud, the sandbox): send one
code to one number. Adapters translate the provider's answers into these outcomes, so the use
case never sees a provider's error vocabulary, and a provider outage is a typed answer
(``SmsUnavailable`` becomes ``UPSTREAM_UNAVAILABLE`` with ``retryAfterSeconds``), never a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.i18n import DEFAULT_LOCALE


@dataclass(frozen=True)
class SmsMessage:
    """One code for one number. ``phone`` is E.164 (``+8613800138000``); ``locale`` (the
    requester's ``Accept-Language``, or ``[i18n] default_locale``) chooses the template where a
    provider has one per language (``zh-CN`` or ``en``), and the sandbox's text; the code is
    valid ``minutes``."""

    phone: str
    code: str
    locale: str = DEFAULT_LOCALE
    minutes: int = 5


class SmsUnavailable(Exception):
    """The provider could not take the message now (timeout, connection error, its own
    throttling or outage): the person may try again after ``retry_after`` seconds."""

    def __init__(self, reason: str, retry_after: int = 60) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class SmsRejected(Exception):
    """The provider refused this message for good (a number it cannot reach, a template or
    signature not approved): retrying will not help; operators need the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SmsProvider(Protocol):
    """An adapter. ``name`` is its ``[sms] provider`` value."""

    name: str

    async def send(self, message: SmsMessage) -> None:
        """Hand the message to the provider; raises ``SmsUnavailable`` or ``SmsRejected``."""
        ...
