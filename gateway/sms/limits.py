"""The limits against SMS pumping (bots requesting codes to premium numbers, paid per message)
and against flooding one person's phone: per number (a minute, an hour, a day), per client
address (as ``GATEWAY_TRUSTED_PROXIES`` resolves it), per country calling code (an
allow-list), and a global hourly budget. Counted in fixed windows by ``WindowLimit``: in Redis
when configured, so every replica spends one budget; in the process otherwise.

Every refusal is ``RATE_LIMITED`` with ``retryAfterSeconds`` (a country outside the list is
``INVALID_INPUT`` on ``phone``: waiting will not help) and is counted in
``gateway_sms_codes_total`` by reason.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from gateway.config import SmsModel
from gateway.errors import N_, InvalidInput, RateLimited
from gateway.metrics import SMS_CODES
from gateway.phones import calling_code
from gateway.throttle import WindowLimit

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)
_COUNTS = "SMS codes"  # (in the health log: "Redis (SMS codes limits)")
BUDGET_WARNING = 0.8  # of the hourly budget: one warning line when it is reached
_PER_PHONE = N_("Too many codes for this number; retry in %(seconds)s seconds.")
_PER_ADDRESS = N_("Too many codes from this network; retry in %(seconds)s seconds.")
_BUDGET = N_("Too many codes are being sent right now; retry in %(seconds)s seconds.")


class SmsLimits:
    def __init__(self, redis: Redis | None, settings: SmsModel, clock: Callable[[], float]) -> None:
        self._countries = frozenset(settings.countries)
        self._phone = [
            (f"sms-phone-{seconds}", WindowLimit(redis, limit, float(seconds), clock, _COUNTS))
            for seconds, limit in (
                (60, settings.per_phone_minute),
                (3600, settings.per_phone_hour),
                (86400, settings.per_phone_day),
            )
        ]
        self._address = WindowLimit(redis, settings.per_address_hour, 3600.0, clock, _COUNTS)
        self._budget = WindowLimit(redis, settings.hourly_budget, 3600.0, clock, _COUNTS)
        self._warn_at = max(1, int(settings.hourly_budget * BUDGET_WARNING))

    def check_country(self, phone: str) -> None:
        """Only numbers of the allowed calling codes get a code."""
        code = calling_code(phone)
        if code not in self._countries:
            SMS_CODES.labels("country").inc()
            raise InvalidInput("phone", "This gateway sends no SMS to %(code)s numbers.", code=code)

    async def spend(self, phone: str, address: str) -> None:
        """Count one code for ``phone`` requested from ``address``, or refuse it."""
        for prefix, limit in self._phone:
            await _counted("phone", limit.spend(f"{prefix}:{phone}", _PER_PHONE))
        await _counted("address", self._address.spend(f"sms-ip:{address}", _PER_ADDRESS))
        used = await _counted("budget", self._budget.spend("sms-budget", _BUDGET))
        if used == self._warn_at:
            log.warning(
                "SMS hourly budget %d%% spent (%d codes); [sms] hourly_budget refuses the rest",
                int(BUDGET_WARNING * 100),
                used,
            )


async def _counted(reason: str, spending: Awaitable[int]) -> int:
    """``spending``'s count; a refusal counted in the metrics under ``reason``."""
    try:
        return await spending
    except RateLimited:
        SMS_CODES.labels(reason).inc()
        raise
