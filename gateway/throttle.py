"""Brute-force throttling of password logins and partner secrets, without lockout by strangers.

Following OWASP (Authentication Cheat Sheet, "Account lockout"; "Slow down online guessing
attacks with device cookies"), a caller's attempt counts on several keys:

- per (account, client address), under the strict ``policy``: attempts are counted before the
  check (so aliases, batches and concurrent requests cannot race past it) and a success uncounts;
- per address, under ``address_policy`` (sized for NAT: thousands of people behind one
  address): only *failures* count, so attempts in flight never hold the honest ones (a
  registration's address key too: there a taken username is the failure), and they count per
  fixed ``window``: a busy address's steady trickle of typos never has the quiet hours that
  would forget it, and would otherwise add up until everyone behind it waits;
- per account, under ``account_policy``: ten times the free failures, then never a refusal for
  someone slower than the delay but a **queue**: each attempt takes the next slot, one
  ``wait_step`` (the delay) after the last, and is checked only when its slot comes; a slot more
  than ``max_wait`` ahead is refused. So a username's password is checked at most once per
  delay once its free failures are spent, wherever the guesses come from, and its owner waits at
  most the queue ahead of it;
- a client that logged in before presents a signed device cookie and counts on its own key only
  (``credentials.devices``), so it is not held by failures from anywhere else.

Modelled on Keycloak's brute-force detection: a number of free failures, then growing waits
(one ``wait_step`` more per further ``failure_factor`` failures, up to ``max_wait``), and the
count forgotten after ``reset_after`` quiet seconds or on a successful login.

The in-process store serves one process; ``RedisThrottleStore`` shares counts across replicas.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from gateway.degraded import Degraded
from gateway.errors import RateLimited, TemporarilyUnavailable, Throttled
from gateway.metrics import THROTTLED
from gateway.store.shared_state import redis_error

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass(frozen=True)
class ThrottlePolicy:
    failure_factor: int = 10
    wait_step: float = 60.0
    max_wait: float = 15 * 60.0
    reset_after: float = 12 * 3600.0
    window: float = 0.0  # > 0: counts start afresh every window (addresses), whatever came

    def slowing(self, delay: float = 5.0, max_delay: float = 60.0) -> ThrottlePolicy:
        """The per-account queue: ten times the free failures, then one check per ``delay``
        (``wait_step``), queued at most ``max_delay`` (``max_wait``) ahead."""
        return ThrottlePolicy(self.failure_factor * 10, delay, max_delay, self.reset_after)

    def for_addresses(self, failure_factor: int, window: float = 0.0) -> ThrottlePolicy:
        """The per-address policy: the same waits after many more free failures, per window."""
        return ThrottlePolicy(
            failure_factor, self.wait_step, self.max_wait, self.reset_after, window
        )

    def wait(self, failures: int) -> float:
        """Seconds to wait before the next attempt after ``failures`` failed ones."""
        if failures < self.failure_factor:
            return 0.0
        return min(self.wait_step * (failures // self.failure_factor), self.max_wait)


class ThrottleStore(Protocol):
    async def attempt(self, key: str, policy: ThrottlePolicy) -> float:
        """Atomically: 0 and the attempt is counted, or the seconds left to wait (not counted)."""

    async def waiting(self, key: str, policy: ThrottlePolicy) -> float:
        """The seconds left to wait on ``key`` (0: none), counting nothing."""

    async def failed(self, key: str, policy: ThrottlePolicy) -> None:
        """Count one failure on ``key``."""

    async def slot(self, key: str, policy: ThrottlePolicy) -> float:
        """Atomically, on a per-account queue: count the attempt and answer the seconds until its
        slot (0 while free failures are left); or, when that is more than ``max_wait`` away,
        count nothing and answer minus the seconds until it would not be."""

    async def release(self, key: str) -> None:
        """Uncount one attempt (it succeeded)."""

    async def forgive(self, key: str) -> None:
        """Forget every counted attempt."""


class MemoryThrottleStore:
    """One process: no call below suspends between its read and its write, so each is atomic
    on the event loop."""

    def __init__(self, clock: Callable[[], float] = time.time, maxsize: int = 100_000) -> None:
        self._clock = clock
        self._maxsize = maxsize
        self._counts: dict[str, tuple[int, float]] = {}
        self._slots: dict[str, float] = {}

    async def attempt(self, key: str, policy: ThrottlePolicy) -> float:
        wait = await self.waiting(key, policy)
        if wait <= 0:
            await self.failed(key, policy)
        return wait

    async def waiting(self, key: str, policy: ThrottlePolicy) -> float:
        now = self._clock()
        count, at = self._count(key, policy, now)
        return max(policy.wait(count) - (now - at), 0.0)

    async def failed(self, key: str, policy: ThrottlePolicy) -> None:
        now = self._clock()
        self._put(key, self._count(key, policy, now)[0] + 1, now)

    async def slot(self, key: str, policy: ThrottlePolicy) -> float:
        now = self._clock()
        count, _ = self._count(key, policy, now)
        wait = 0.0
        if count >= policy.failure_factor:
            start = max(now, self._slots.get(key, 0.0))
            wait = start - now
            if wait > policy.max_wait:
                return policy.max_wait - wait
            self._slots[key] = start + policy.wait_step
        self._put(key, count + 1, now)
        return wait

    def _count(self, key: str, policy: ThrottlePolicy, now: float) -> tuple[int, float]:
        count, at = self._counts.get(key, (0, 0.0))
        return (0, at) if now - at > policy.reset_after else (count, at)

    def _put(self, key: str, count: int, now: float) -> None:
        if len(self._counts) >= self._maxsize and key not in self._counts:
            oldest = next(iter(self._counts))
            self._counts.pop(oldest)
            self._slots.pop(oldest, None)
        self._counts[key] = (count, now)

    async def release(self, key: str) -> None:
        count, at = self._counts.get(key, (0, 0.0))
        if count > 1:
            self._counts[key] = (count - 1, at)
        else:
            self._counts.pop(key, None)

    async def forgive(self, key: str) -> None:
        self._counts.pop(key, None)
        self._slots.pop(key, None)


class RedisThrottleStore:
    """The same rules in one Lua script per call, so replicas share counts atomically."""

    _READ = """
    local now, reset = tonumber(ARGV[1]), tonumber(ARGV[2])
    local factor, step, max = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
    local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
    local t = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
    if now - t > reset then n = 0 end
    """
    _COUNT = """
    redis.call('HSET', KEYS[1], 'n', n + 1, 't', ARGV[1])
    redis.call('EXPIRE', KEYS[1], math.ceil(reset))
    """
    _WAIT = """
    local wait = 0
    if n >= factor then wait = math.min(step * math.floor(n / factor), max) - (now - t) end
    """
    _ATTEMPT = _READ + _WAIT + "if wait > 0 then return tostring(wait) end" + _COUNT + "return '0'"
    _WAITING = _READ + _WAIT + "return tostring(math.max(wait, 0))"
    _FAILED = _READ + _COUNT + "return '0'"
    _SLOT = (
        _READ
        + """
    local wait = 0
    if n >= factor then
      local s = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
      local start = math.max(now, s)
      wait = start - now
      if wait > max then return tostring(max - wait) end
      redis.call('HSET', KEYS[1], 's', tostring(start + step))
    end
    """
        + _COUNT
        + "return tostring(wait)"
    )
    _RELEASE = """
    local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
    if n > 1 then redis.call('HSET', KEYS[1], 'n', n - 1) else redis.call('DEL', KEYS[1]) end
    return n
    """

    def __init__(self, redis: Redis, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock
        self._attempt = redis.register_script(self._ATTEMPT)
        self._waiting = redis.register_script(self._WAITING)
        self._failed = redis.register_script(self._FAILED)
        self._slot = redis.register_script(self._SLOT)
        self._release = redis.register_script(self._RELEASE)

    async def attempt(self, key: str, policy: ThrottlePolicy) -> float:
        return float(await self._attempt(keys=[_redis_key(key)], args=self._args(policy)))

    async def waiting(self, key: str, policy: ThrottlePolicy) -> float:
        return float(await self._waiting(keys=[_redis_key(key)], args=self._args(policy)))

    async def failed(self, key: str, policy: ThrottlePolicy) -> None:
        await self._failed(keys=[_redis_key(key)], args=self._args(policy))

    async def slot(self, key: str, policy: ThrottlePolicy) -> float:
        return float(await self._slot(keys=[_redis_key(key)], args=self._args(policy)))

    def _args(self, policy: ThrottlePolicy) -> list[str | float]:
        return [
            repr(self._clock()),
            policy.reset_after,
            policy.failure_factor,
            policy.wait_step,
            policy.max_wait,
        ]

    async def release(self, key: str) -> None:
        await self._release(keys=[_redis_key(key)])

    async def forgive(self, key: str) -> None:
        await self._redis.delete(_redis_key(key))


def _redis_key(key: str) -> str:
    return f"gw:throttle:{key}"


class Throttle:
    def __init__(
        self,
        store: ThrottleStore,
        policy: ThrottlePolicy | None = None,
        account_policy: ThrottlePolicy | None = None,
        address_policy: ThrottlePolicy | None = None,
        max_delayed: int = 32,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._clock = clock
        self._policy = policy or ThrottlePolicy()
        self._account_policy = account_policy or self._policy.slowing()
        self._address_policy = address_policy or self._policy.for_addresses(1000)
        self._max_delayed = max_delayed
        self._delayed = 0
        self.health = Degraded("Redis (throttles)", "password logins refused until it is back")

    async def admit(
        self, keys: list[str], slow: Sequence[str] = (), addresses: Sequence[str] = ()
    ) -> None:
        """Refuse while an address must wait (failures only), count the attempt on every key
        (``slow`` ones on the per-account queue), and return when its slot has come; or refuse
        it, uncounted."""
        admitted: list[str] = []
        delay = 0.0
        try:
            for key in self._windowed(addresses):
                _refuse_after(await self._store.waiting(key, self._address_policy))
            for key in keys:
                wait = await self._store.attempt(key, self._policy)
                if wait > 0:
                    await self._release(admitted)
                    _refuse_after(wait)
                admitted.append(key)
            for key in slow:
                wait = await self._store.slot(key, self._account_policy)
                if wait < 0:
                    await self._release(admitted)
                    _refuse_after(-wait)
                admitted.append(key)
                delay = max(delay, wait)
        except redis_error() as exc:
            self.health.failed(exc)
            raise _unavailable() from None
        self.health.ok()
        await self._wait(delay, admitted)

    async def _wait(self, delay: float, admitted: list[str]) -> None:
        """Sleep until the attempt's slot, with at most ``max_delayed`` asleep in this process."""
        if delay <= 0:
            return
        if self._delayed >= self._max_delayed:
            await self.succeeded(forgive=[], release=admitted)
            _refuse_after(delay)
        self._delayed += 1
        try:
            await asyncio.sleep(delay)
        finally:
            self._delayed -= 1

    def _windowed(self, addresses: Sequence[str]) -> list[str]:
        """The address keys of the current window (the policy's ``window``; none: as given)."""
        window = self._address_policy.window
        if window <= 0:
            return list(addresses)
        return [f"{key}@{int(self._clock() // window)}" for key in addresses]

    async def _release(self, keys: list[str]) -> None:
        for key in keys:
            await self._store.release(key)

    async def failed(self, addresses: Sequence[str]) -> None:
        """A wrong password: count a failure on each address key."""
        try:
            for key in self._windowed(addresses):
                await self._store.failed(key, self._address_policy)
        except redis_error() as exc:
            self.health.failed(exc)
            raise _unavailable() from None
        self.health.ok()

    async def succeeded(self, forgive: list[str], release: list[str]) -> None:
        """A right password: forget the username's failures, uncount this attempt elsewhere."""
        try:
            for key in forgive:
                await self._store.forgive(key)
            await self._release(release)
        except redis_error() as exc:
            self.health.failed(exc)
            raise _unavailable() from None
        self.health.ok()


def _refuse_after(wait: float) -> None:
    if wait > 0:
        THROTTLED.inc()
        raise Throttled(retry_after=max(round(wait, 1), 0.1))


def _unavailable() -> TemporarilyUnavailable:
    """Fail closed: without the shared counters, password logins would be unthrottled."""
    return TemporarilyUnavailable(
        "Password login is briefly unavailable; try again shortly.", retry_after=5.0
    )


class WindowLimit:
    """At most ``limit`` events per key in fixed windows of ``window`` seconds (registrations
    per address, personal-data exports per account, SMS codes; ``counts`` names them in the
    health log), counted in Redis when set so replicas
    share it; Redis down fails closed."""

    def __init__(
        self,
        redis: Redis | None,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.time,
        counts: str = "registrations",
    ) -> None:
        self._redis = redis
        self._limit = limit
        self._window = window
        self._clock = clock
        self._local: dict[tuple[str, int], int] = {}
        self.health = Degraded(f"Redis ({counts} limits)", f"{counts} refused until back")

    async def spend(self, key: str, refusal: str) -> int:
        """Count one event, or raise ``RateLimited`` (with the seconds left) over the limit;
        the events of this window so far, this one included. ``refusal``: its message, a
        catalogue id (``N_``) with ``%(seconds)s``."""
        now = self._clock()
        window = int(now // self._window)
        used = await self._add(key, window)
        if used > self._limit:
            wait = round(self._window - now % self._window, 1)
            raise RateLimited(refusal, retry_after=wait, seconds=max(math.ceil(wait), 1))
        return used

    async def _add(self, key: str, window: int) -> int:
        if self._redis is None:
            for stale in [k for k in self._local if k[1] < window]:
                del self._local[stale]
            self._local[(key, window)] = self._local.get((key, window), 0) + 1
            return self._local[(key, window)]
        name = f"gw:limit:{key}:{window}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, int(self._window) + 60)
                used, _ = await pipe.execute()
        except redis_error() as exc:
            self.health.failed(exc)
            raise _unavailable() from None
        self.health.ok()
        return int(used)
