"""Registration is metered per client address (issue 12, item 5): over the limit it is a typed
``RATE_LIMITED`` with a retry time, shared by every replica through Redis."""

from __future__ import annotations

import secrets

from tests.support.harness import Configure, Harness, running
from tests.support.passwords import from_ip, register

LIMITED = {"registrations_per_hour": 3}


def name() -> str:
    return f"r{secrets.token_hex(5)}"


async def test_registrations_over_the_limit_are_rate_limited(
    database_url: str, configure: Configure
) -> None:
    async with running(configure(database_url, throttle=LIMITED)) as gw:
        async with from_ip(gw, "203.0.113.80") as http:
            for _ in range(3):
                assert (await register(gw, name(), http=http))["__typename"] == "LoginSuccess"
            refused = await register(gw, name(), http=http)
            # a failed registration counts too: the limit meters attempts, not accounts
            assert (refused["__typename"], refused["code"]) == ("RateLimitedError", "RATE_LIMITED")
            assert 0 < refused["retryAfterSeconds"] <= 3600
        async with from_ip(gw, "203.0.113.81") as other:
            assert (await register(gw, name(), http=other))["__typename"] == "LoginSuccess"


async def test_the_default_meters_a_burst(gw: Harness) -> None:
    """The issue's burst of registrations from one address: the default stops it at 20."""
    async with from_ip(gw, "203.0.113.90") as http:
        codes = [(await register(gw, name(), "x", http=http)).get("code") for _ in range(25)]
    assert codes == ["WEAK_PASSWORD"] * 20 + ["RATE_LIMITED"] * 5


async def test_replicas_share_the_registration_count(
    database_url: str, configure: Configure, redis_url: str
) -> None:
    config = configure(database_url, throttle=LIMITED, redis_url=redis_url)
    ip = f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    async with running(config) as one, running(config) as two:
        for n in range(3):
            gw = (one, two)[n % 2]
            async with from_ip(gw, ip) as http:
                assert (await register(gw, name(), http=http))["__typename"] == "LoginSuccess"
        async with from_ip(two, ip) as http:
            assert (await register(two, name(), http=http))["code"] == "RATE_LIMITED"
