"""Throttling that counts failures, not attempts (issue 30, defect 5), through GraphQL and
``/oauth/token`` over HTTP: many honest people behind one address all get in, and a stranger
rotating addresses slows a username's owner by at most a short delay, never refuses one plain
attempt with the right password, while the stranger's guesses per username stay bounded (at
most one password check per ``account_delay_seconds`` once the free failures are spent)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from gateway.errors import Throttled
from gateway.throttle import (
    MemoryThrottleStore,
    RedisThrottleStore,
    Throttle,
    ThrottlePolicy,
    ThrottleStore,
)
from tests.support.harness import Configure, Harness, MakeConfig, running
from tests.support.partners import partner_config, partners_toml, secret_of
from tests.support.passwords import from_ip, password_login, register

DELAY = 0.2  # per-account delay once a username's free failures are spent (tests: short)
SLOWED = {
    "failure_factor": 3,  # per (username, address): 3 free; per username: 30 free
    "account_delay_seconds": DELAY,
    "account_max_delay_seconds": 2.5 * DELAY,
}


def code(result: dict[str, object]) -> object:
    return result.get("code", result["__typename"])


async def test_thirty_people_behind_one_address_log_in_in_one_burst(gw: Harness) -> None:
    """The default policy: in-flight attempts do not count against the address."""
    names = [f"office{n}" for n in range(30)]
    for n, name in enumerate(names):
        async with from_ip(gw, f"198.51.100.{n + 1}") as home:
            assert code(await register(gw, name, http=home)) == "LoginSuccess"
    async with from_ip(gw, "192.0.2.1") as office:
        results = await asyncio.gather(*(password_login(gw, name, http=office) for name in names))
    assert [code(r) for r in results] == ["LoginSuccess"] * 30


async def test_twenty_people_behind_one_address_register_in_one_burst(gw: Harness) -> None:
    """The registration throttle counts failures too, never attempts in flight: a burst up to
    ``registrations_per_hour`` (20) from one address all get in, past the throttle's 10."""
    async with from_ip(gw, "192.0.2.2") as office:
        names = [f"newcomer{n}" for n in range(20)]
        results = await asyncio.gather(*(register(gw, name, http=office) for name in names))
    assert [code(r) for r in results] == ["LoginSuccess"] * 20


async def test_an_address_registering_taken_usernames_is_held(
    database_url: str, configure: Configure
) -> None:
    """Registration as a username oracle: each ``USERNAME_TAKEN`` counts on the address (the
    per-address policy, here 3 free failures), successes and other addresses never do."""
    throttle = {"address_failure_factor": 3, "address_window_seconds": 7 * 86400}
    config = configure(database_url, throttle=throttle)
    async with running(config) as gw, from_ip(gw, "203.0.113.7") as prober:
        for n in range(12):  # successes only: never held
            assert code(await register(gw, f"honest{n}", http=prober)) == "LoginSuccess"
        probes = [code(await register(gw, f"honest{n}", http=prober)) for n in range(4)]
        assert probes == ["USERNAME_TAKEN"] * 3 + ["THROTTLED"]
        assert code(await register(gw, "fresh-name", http=prober)) == "THROTTLED"
        async with from_ip(gw, "203.0.113.8") as other:
            assert code(await register(gw, "fresh-name", http=other)) == "LoginSuccess"


@pytest.fixture
async def sgw(database_url: str, configure: Configure) -> AsyncIterator[Harness]:
    async with running(configure(database_url, throttle=SLOWED)) as harness:
        yield harness


async def test_a_slow_attacker_rotating_addresses_never_keeps_the_owner_out(sgw: Harness) -> None:
    async with from_ip(sgw, "198.51.100.1") as home:
        assert code(await register(sgw, "olga", http=home)) == "LoginSuccess"
    for n in range(30):  # the username's free failures, spent from 30 addresses
        async with from_ip(sgw, f"203.0.113.{n + 1}") as stranger:
            assert code(await password_login(sgw, "olga", f"guess-{n}-x", http=stranger)) == (
                "INVALID_CREDENTIALS"
            )
    owner = []
    for n in range(10):  # interleaved: a guess from a new address, then the owner from another
        async with from_ip(sgw, f"203.0.113.{n + 100}") as stranger:
            guess = await password_login(sgw, "olga", f"again-{n}-x", http=stranger)
            assert code(guess) == "INVALID_CREDENTIALS"
        async with from_ip(sgw, f"198.51.100.{n + 10}") as new_address:  # no device cookie
            owner.append(code(await password_login(sgw, "olga", http=new_address)))
    assert owner == ["LoginSuccess"] * 10


async def test_a_slowed_username_gets_one_password_check_per_delay(sgw: Harness) -> None:
    """The bound: once a username's free failures are spent, its password is checked at most
    once per ``account_delay_seconds``, however many addresses guess at once."""
    async with from_ip(sgw, "198.51.100.1") as home:
        assert code(await register(sgw, "petra", http=home)) == "LoginSuccess"
    for n in range(30):
        async with from_ip(sgw, f"203.0.113.{n + 1}") as stranger:
            await password_login(sgw, "petra", f"guess-{n}-x", http=stranger)

    async def guess(n: int) -> object:
        async with from_ip(sgw, f"192.0.2.{n + 1}") as stranger:
            return code(await password_login(sgw, "petra", f"burst-{n}-x", http=stranger))

    started = time.monotonic()
    codes = await asyncio.gather(*(guess(n) for n in range(20)))
    elapsed = time.monotonic() - started
    checked = codes.count("INVALID_CREDENTIALS")
    assert set(codes) <= {"INVALID_CREDENTIALS", "THROTTLED"}
    assert 1 <= checked <= 1 + elapsed / DELAY
    assert codes.count("THROTTLED") >= 20 - 1 - (elapsed + 2.5 * DELAY) / DELAY
    async with from_ip(sgw, "198.51.100.99") as owner:  # and the owner still gets in
        assert code(await password_login(sgw, "petra", http=owner)) == "LoginSuccess"


# -- partner secrets --------------------------------------------------------------------------


@pytest.fixture
async def pgw(database_url: str, tmp_path: Path, make_config: MakeConfig) -> AsyncIterator[Harness]:
    throttle = "".join(f"{k} = {v}\n" for k, v in SLOWED.items())
    toml = partners_toml(["crm"]) + f"\n[throttle]\n{throttle}"
    async with running(partner_config(make_config(database_url), tmp_path, toml)) as harness:
        yield harness


async def token(gw: Harness, ip: str, secret: str) -> int:
    async with from_ip(gw, ip) as http:
        answer = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": "crm", "client_secret": secret},
        )
    return answer.status_code


async def test_a_slow_attacker_rotating_addresses_never_keeps_a_partner_out(pgw: Harness) -> None:
    for n in range(30):
        assert await token(pgw, f"203.0.113.{n + 1}", "wrong-secret") == 401
    served = []
    for n in range(10):
        assert await token(pgw, f"203.0.113.{n + 100}", "wrong-secret") == 401
        served.append(await token(pgw, f"10.20.30.{n + 1}", secret_of("crm")))
    assert served == [200] * 10


# -- the rules, on an injected clock -----------------------------------------------------------

QUEUE = ThrottlePolicy(failure_factor=2, wait_step=5.0, max_wait=12.0, reset_after=3600.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def queue_rules(store: ThrottleStore, clock: Clock, key: str) -> None:
    assert [await store.slot(key, QUEUE) for _ in range(2)] == [0, 0]  # the free failures
    # then one slot per 5 s, at most 12 s ahead: a refusal says how long until one fits
    assert [await store.slot(key, QUEUE) for _ in range(4)] == [0, 5, 10, -3]
    clock.now += 5  # one slot has passed: one more fits at the end of the queue
    assert [await store.slot(key, QUEUE) for _ in range(2)] == [10, -3]
    clock.now += 60  # an idle queue starts again at the next attempt
    assert await store.slot(key, QUEUE) == 0
    await store.release(key)  # a success uncounts, and never frees the failures: still queued
    assert await store.slot(key, QUEUE) == 5
    # per address: failures only, never attempts
    address = QUEUE.for_addresses(2)
    assert await store.waiting(f"{key}:ip", address) == 0
    await store.failed(f"{key}:ip", address)
    assert await store.waiting(f"{key}:ip", address) == 0
    await store.failed(f"{key}:ip", address)
    assert await store.waiting(f"{key}:ip", address) == QUEUE.wait_step


async def test_the_memory_queue_gives_one_check_per_delay() -> None:
    clock = Clock()
    await queue_rules(MemoryThrottleStore(clock=clock), clock, "k")


async def test_the_redis_queue_gives_one_check_per_delay(redis_url: str) -> None:
    clock, redis = Clock(), Redis.from_url(redis_url)
    try:
        await queue_rules(RedisThrottleStore(redis, clock=clock), clock, secrets.token_hex(6))
    finally:
        await redis.aclose()


@pytest.mark.parametrize("window", [3600.0, 0.0], ids=["per-hour", "no-window"])
async def test_a_busy_address_forgets_its_failures_every_window(window: float) -> None:
    """A carrier NAT address with the default policy: an honest typo every 30 s (120 an hour,
    far under the 1000 free ones), for two days, never a quiet 12 hours. Counted per hour, it
    is never held. Counted until 12 quiet hours (no window), the 1000th typo holds everyone
    behind it a minute, and every later one longer: most attempts of the second day are
    refused. A burst over the free failures holds it until the next window."""
    clock = Clock()
    clock.now = 3600.0 * 1_000  # the start of an hour
    policy = ThrottlePolicy()
    addresses = policy.for_addresses(1000, window)
    throttle = Throttle(MemoryThrottleStore(clock=clock), policy, None, addresses, clock=clock)
    held = [0, 0]  # refused attempts, per day
    for n in range(2 * 24 * 120):
        try:
            await throttle.admit([], addresses=["ip:carrier"])
            await throttle.failed(["ip:carrier"])
        except Throttled:
            held[n // (24 * 120)] += 1
        clock.now += 30.0
    if not window:
        assert held[1] > 24 * 120 / 2, held
        return
    assert held == [0, 0]
    for _ in range(1000):
        await throttle.failed(["ip:carrier"])
    with pytest.raises(Throttled):
        await throttle.admit([], addresses=["ip:carrier"])
    clock.now += 3600.0
    await throttle.admit([], addresses=["ip:carrier"])


async def test_delayed_attempts_asleep_at_once_are_bounded() -> None:
    """No pile-up of sleeping coroutines: beyond ``max_delayed`` an attempt is refused, and
    uncounted."""
    store = MemoryThrottleStore()
    slow = ThrottlePolicy(failure_factor=1, wait_step=30.0, max_wait=600.0)
    throttle = Throttle(store, account_policy=slow, max_delayed=2)
    await throttle.admit([], slow=["user:u"])  # the free failure: no delay
    sleeping = [asyncio.create_task(throttle.admit([], slow=["user:u"])) for _ in range(3)]
    await asyncio.sleep(0)  # let them reserve their slots (the first is due at once)
    with pytest.raises(Throttled):
        await throttle.admit([], slow=["user:u"])
    for task in sleeping:
        task.cancel()
    await asyncio.gather(*sleeping, return_exceptions=True)
