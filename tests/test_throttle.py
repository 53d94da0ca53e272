"""Brute-force throttling of password logins (Keycloak-style), through GraphQL over HTTP.

Most tests run a gateway with ``[throttle] failure_factor = 3, wait_step_seconds = 60``: three
free failures, then a wait. Attempts are counted per username and per client IP before the
password is checked, so aliases in one request and concurrent requests cannot go past the limit.
With Redis the count is shared by every gateway process; without Redis it fails closed.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlmodel import col

from gateway.store.models import AuditEvent
from gateway.throttle import MemoryThrottleStore, ThrottlePolicy
from tests.support.harness import REDIS_URL, Configure, Harness, running, skip_or_fail
from tests.support.passwords import (
    CHANGE_PASSWORD,
    CLIENT,
    GOOD_PASSWORD,
    from_ip,
    fullwidth,
    gql,
    password_login,
    register,
    registered,
)

# a week's window for addresses: no test straddles the boundary that forgets their failures
STRICT = {
    "failure_factor": 3,
    "wait_step_seconds": 60,
    "address_failure_factor": 3,
    "address_window_seconds": 7 * 86400,
}


@pytest.fixture
async def tgw(database_url: str, configure: Configure) -> AsyncIterator[Harness]:
    async with running(configure(database_url, throttle=STRICT)) as harness:
        yield harness


def assert_throttled(result: dict[str, Any], *, at_most: float = 60) -> None:
    assert (result["__typename"], result["code"]) == ("RateLimitedError", "THROTTLED"), result
    assert 0 < result["retryAfterSeconds"] <= at_most


def assert_invalid(result: dict[str, Any]) -> None:
    assert (result["__typename"], result["code"]) == (
        "InvalidCredentialsError",
        "INVALID_CREDENTIALS",
    ), result


async def test_after_three_failures_even_the_right_password_is_throttled(tgw: Harness) -> None:
    await registered(tgw, "bob")
    async with from_ip(tgw, "203.0.113.1") as attacker, from_ip(tgw, "198.51.100.2") as owner:
        for n, lookalike in enumerate(("bob", "BOB", fullwidth("bob"))):  # one username
            assert_invalid(await password_login(tgw, lookalike, f"guess-{n}-xyz", http=attacker))
        # the username waits at that address, even with the right password ...
        assert_throttled(await password_login(tgw, "bob", http=attacker))
        assert_throttled(await password_login(tgw, "bob", "guess-3-xyz", http=attacker))
        # ... but a stranger cannot lock the owner out (OWASP; see test_lockout.py)
        login = await password_login(tgw, "bob", http=owner)
        assert login["__typename"] == "LoginSuccess", login


async def test_a_success_before_the_limit_resets_the_username_count(tgw: Harness) -> None:
    await registered(tgw, "carol")
    async with from_ip(tgw, "203.0.113.10") as first, from_ip(tgw, "203.0.113.11") as second:
        for n in range(2):
            assert_invalid(await password_login(tgw, "carol", f"typo-{n}-abc", http=first))
        login = await password_login(tgw, "carol", http=first)
        assert login["__typename"] == "LoginSuccess", login
        for n in range(2):
            assert_invalid(await password_login(tgw, "carol", f"typo-{n}-def", http=second))
        # 4 failures in all, but never 3 since the success
        login = await password_login(tgw, "carol", http=second)
        assert login["__typename"] == "LoginSuccess", login


async def test_one_ip_is_throttled_across_usernames(tgw: Harness) -> None:
    await registered(tgw, "dave")
    async with from_ip(tgw, "192.0.2.77") as sprayer, from_ip(tgw, "192.0.2.78") as neighbour:
        seen = await password_login(tgw, "dave", http=sprayer)
        sessions = await gql(
            sprayer, "{ viewer { sessions { ip current } } }", {}, seen["accessToken"]
        )
        current = [s for s in sessions["data"]["viewer"]["sessions"] if s["current"]]
        assert current == [{"ip": "192.0.2.77", "current": True}]  # the app sees this IP

        for name in ("erin", "frank", "gina"):  # one guess each: no username reaches 3
            assert_invalid(await password_login(tgw, name, "Summer2024!", http=sprayer))
        assert_throttled(await password_login(tgw, "hank", "Summer2024!", http=sprayer))
        sprayer.cookies.clear()  # dave's device cookie would count that device on its own
        assert_throttled(await password_login(tgw, "dave", http=sprayer))
        # the same usernames from another IP are not throttled
        assert_invalid(await password_login(tgw, "hank", "Summer2024!", http=neighbour))
        login = await password_login(tgw, "dave", http=neighbour)
        assert login["__typename"] == "LoginSuccess", login


def aliased_logins(count: int) -> str:
    fields = "\n".join(
        f'a{n}: loginWithPassword(input: {{username: $u{n}, password: $p, app: "shop-mp", '
        f'client: {{platform: "web"}}}}) {{ __typename ... on Error {{ code }} '
        "... on RateLimitedError { retryAfterSeconds } }"
        for n in range(count)
    )
    params = ", ".join(f"$u{n}: String!" for n in range(count))
    return f"mutation({params}, $p: String!) {{\n{fields}\n}}"


@pytest.mark.parametrize("same_username", [True, False], ids=["one-username", "many-usernames"])
async def test_aliases_in_one_request_count_as_separate_attempts(
    tgw: Harness, same_username: bool
) -> None:
    await registered(tgw, "ivy")
    variables: dict[str, Any] = {f"u{n}": "ivy" if same_username else f"ivy{n}" for n in range(10)}
    body = await tgw.gql(aliased_logins(10), {**variables, "p": "not-her-password"})
    assert "errors" not in body, body
    codes = [body["data"][f"a{n}"]["code"] for n in range(10)]
    assert codes == ["INVALID_CREDENTIALS"] * 3 + ["THROTTLED"] * 7
    assert all(body["data"][f"a{n}"]["retryAfterSeconds"] > 0 for n in range(3, 10))
    # and the request after it, with the right password, waits too
    assert_throttled(await password_login(tgw, "ivy"))


async def test_throttling_is_on_by_default(gw: Harness) -> None:
    """The default policy (10 free failures) holds against one request of 12 aliases."""
    await registered(gw, "jack")
    variables = {f"u{n}": "jack" for n in range(12)}
    body = await gw.gql(aliased_logins(12), {**variables, "p": "not-his-password"})
    assert "errors" not in body, body
    codes = [body["data"][f"a{n}"]["code"] for n in range(12)]
    assert codes == ["INVALID_CREDENTIALS"] * 10 + ["THROTTLED"] * 2
    assert_throttled(await password_login(gw, "jack"))


async def test_concurrent_attempts_cannot_race_past_the_limit(tgw: Harness) -> None:
    await registered(tgw, "kate")
    results = await asyncio.gather(
        *(password_login(tgw, "kate", f"guess-{n}-zz") for n in range(10))
    )
    codes = sorted(r["code"] for r in results)
    assert codes == ["INVALID_CREDENTIALS"] * 3 + ["THROTTLED"] * 7


async def test_change_password_guesses_are_throttled_too(tgw: Harness) -> None:
    """A stolen access token must not become a password oracle."""
    created = await registered(tgw, "liam")
    codes = []
    for n in range(4):
        variables = {"current": f"guess-{n}-yy", "new": "brand-New-pass-9", "client": CLIENT}
        body = await gql(tgw.client, CHANGE_PASSWORD, variables, created["accessToken"])
        codes.append(body["data"]["changePassword"]["code"])
    assert codes == ["INVALID_CREDENTIALS"] * 3 + ["THROTTLED"]


async def test_a_throttled_attempt_is_audited(tgw: Harness) -> None:
    await registered(tgw, "mia")
    for n in range(3):
        assert_invalid(await password_login(tgw, "mia", f"guess-{n}-ww"))
    assert_throttled(await password_login(tgw, "mia"))
    async with tgw.app.state.services.db.reader() as s:
        query = select(AuditEvent).where(col(AuditEvent.kind) == "login_failed")
        reasons = [e.detail.get("reason") for e in (await s.execute(query)).scalars()]
    assert reasons.count("INVALID_CREDENTIALS") == 3
    assert reasons.count("THROTTLED") == 1


# -- the policy and the in-process store, on a fake clock --------------------------------------


def test_the_wait_grows_with_every_failure_factor_and_is_capped() -> None:
    policy = ThrottlePolicy(failure_factor=3, wait_step=60, max_wait=150)
    assert [policy.wait(n) for n in range(10)] == [0, 0, 0, 60, 60, 60, 120, 120, 120, 150]


async def test_the_memory_store_waits_then_admits_and_forgets_after_quiet() -> None:
    now = [1000.0]
    store = MemoryThrottleStore(clock=lambda: now[0])
    policy = ThrottlePolicy(failure_factor=2, wait_step=60, max_wait=600, reset_after=3600)
    assert [await store.attempt("k", policy) for _ in range(2)] == [0, 0]
    assert await store.attempt("k", policy) == 60  # refused, and not counted
    now[0] += 59
    assert await store.attempt("k", policy) == pytest.approx(1)
    now[0] += 1
    assert await store.attempt("k", policy) == 0  # the third attempt, admitted
    assert await store.attempt("k", policy) == 60
    now[0] += 3601
    assert [await store.attempt("k", policy) for _ in range(2)] == [0, 0]  # forgotten
    await store.forgive("k")
    assert [await store.attempt("k", policy) for _ in range(2)] == [0, 0]


# -- Redis: shared by every gateway process, and failing closed -----------------------------


@pytest.fixture
def redis_url() -> str:
    if not REDIS_URL:
        skip_or_fail("Redis")
    assert REDIS_URL
    return REDIS_URL


async def stored_in_redis(url: str, key: str) -> bool:
    redis = Redis.from_url(url)
    try:
        return bool(await redis.exists(f"gw:throttle:{key}"))
    finally:
        await redis.aclose()


async def forget(url: str, *keys: str) -> None:
    """Remove only this test's counters (never FLUSHALL a shared Redis)."""
    redis = Redis.from_url(url)
    try:
        await redis.delete(*(f"gw:throttle:{k}" for k in keys))
        for key in keys:  # an address's counts, one per window
            async for name in redis.scan_iter(match=f"gw:throttle:{key}@*"):
                await redis.delete(name)
    finally:
        await redis.aclose()


def random_ip() -> str:
    """A TEST-NET-2 address of this test's own, so no other test shares its Redis counter."""
    return f"198.51.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


async def test_two_gateways_on_one_redis_share_the_count(
    database_url: str,
    configure: Configure,
    redis_url: str,
) -> None:
    user, attacker, owner = f"rd-{secrets.token_hex(6)}", random_ip(), random_ip()
    keys = [f"user:{user}", f"user:{user}-x", f"user-ip:{user}:{attacker}"]
    keys += [f"{kind}:{ip}" for kind in ("ip", "register-ip") for ip in (attacker, owner)]
    config = configure(database_url, throttle=STRICT, redis_url=redis_url)
    await forget(redis_url, *keys)
    try:
        async with running(config) as one, running(config) as two:
            async with from_ip(one, attacker) as http:
                assert (await register(one, user, http=http))["__typename"] == "LoginSuccess"
                for n in range(3):
                    assert_invalid(await password_login(one, user, f"guess-{n}-vv", http=http))
            assert await stored_in_redis(redis_url, f"user-ip:{user}:{attacker}")
            async with from_ip(two, attacker) as http:
                assert_throttled(await password_login(two, user, http=http))
                other = await password_login(two, f"{user}-x", "any-password-1", http=http)
                assert_throttled(other)  # the IP's count is shared too
            async with from_ip(two, owner) as http:  # and a stranger cannot lock the owner out
                assert (await password_login(two, user, http=http))["__typename"] == "LoginSuccess"
    finally:
        await forget(redis_url, *keys)


async def test_concurrent_attempts_on_two_gateways_cannot_race_past_the_limit(
    database_url: str,
    configure: Configure,
    redis_url: str,
) -> None:
    user, ips = f"rc-{secrets.token_hex(6)}", [random_ip() for _ in range(3)]
    keys = [f"user:{user}", *(f"{kind}:{ip}" for kind in ("ip", "register-ip") for ip in ips)]
    keys += [f"user-ip:{user}:{ip}" for ip in ips]
    config = configure(database_url, throttle=STRICT, redis_url=redis_url)
    await forget(redis_url, *keys)
    try:
        async with running(config) as one, running(config) as two:
            async with from_ip(one, ips[0]) as http:
                assert (await register(one, user, http=http))["__typename"] == "LoginSuccess"
            # one IP on both gateways: its (username, IP) count is shared between them
            async with from_ip(one, ips[1]) as via_one, from_ip(two, ips[1]) as via_two:
                results = await asyncio.gather(
                    *(
                        password_login(gw, user, f"guess-{n}-uu", http=http)
                        for n in range(5)
                        for gw, http in ((one, via_one), (two, via_two))
                    )
                )
    finally:
        await forget(redis_url, *keys)
    codes = sorted(r["code"] for r in results)
    assert codes == ["INVALID_CREDENTIALS"] * 3 + ["THROTTLED"] * 7


async def test_redis_down_is_a_typed_temporarily_unavailable(
    database_url: str,
    configure: Configure,
) -> None:
    """Fail closed: without the shared counters password logins would be unthrottled."""
    async with running(configure(database_url)) as healthy:
        await registered(healthy, "nina")
    config = configure(database_url, throttle=STRICT, redis_url="redis://127.0.0.1:1/0")
    async with running(config) as gw:
        for result in (
            await password_login(gw, "nina"),
            await password_login(gw, "nina", "wrong-password-1"),
            await register(gw, "olga"),
        ):
            assert (result["__typename"], result["code"]) == (
                "UpstreamError",
                "TEMPORARILY_UNAVAILABLE",
            ), result
            assert result["message"]
        # everything that needs no counter still works
        wechat = await gw.login("shop-mp", "olga")
        assert wechat["isNewAccount"] is True
    async with running(configure(database_url)) as healthy:
        assert (await password_login(healthy, "olga"))["code"] == "INVALID_CREDENTIALS"
        assert (await password_login(healthy, "nina", GOOD_PASSWORD))["__typename"] == (
            "LoginSuccess"
        )
