"""Brute-force throttling of password logins and partner secrets, without lockout by strangers.

Following OWASP (Authentication Cheat Sheet, "Account lockout"; "Slow down online guessing
attacks with device cookies"), a caller's attempt counts on several keys:

- per (account, client address) and per address, under the strict ``policy``;
- per account, under ``account_policy``: ten times the free failures, and waits that only slow
  (at most ``wait_step``), so failures from elsewhere never lock the owner out;
- a client that logged in before presents a signed device cookie and counts on its own key only
  (``credentials.devices``), so it is not held by failures from anywhere else.

Modelled on Keycloak's brute-force detection: a number of free failures, then growing waits
(one ``wait_step`` more per further ``failure_factor`` failures, up to ``max_wait``), and the
count forgotten after ``reset_after`` quiet seconds or on a successful login.

An attempt is counted *before* the password is checked, atomically, and forgiven on success:
so aliases or batching in one request, or concurrent requests, cannot race past the limit.
The in-process store serves one process; ``RedisThrottleStore`` shares counts across replicas.
"""

from __future__ import annotations

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

    def slowing(self) -> ThrottlePolicy:
        """The per-account policy: many more free failures, waits of seconds, not minutes."""
        return ThrottlePolicy(
            failure_factor=self.failure_factor * 10,
            wait_step=self.wait_step / 12,
            max_wait=min(self.wait_step, self.max_wait),
            reset_after=self.reset_after,
        )

    def wait(self, failures: int) -> float:
        """Seconds to wait before the next attempt after ``failures`` failed ones."""
        if failures < self.failure_factor:
            return 0.0
        return min(self.wait_step * (failures // self.failure_factor), self.max_wait)


class ThrottleStore(Protocol):
    async def attempt(self, key: str, policy: ThrottlePolicy) -> float:
        """Atomically: 0 and the attempt is counted, or the seconds left to wait (not counted)."""

    async def release(self, key: str) -> None:
        """Uncount one attempt (it succeeded)."""

    async def forgive(self, key: str) -> None:
        """Forget every counted attempt."""


class MemoryThrottleStore:
    """One process: the read-check-write below has no await, so it is atomic on the loop."""

    def __init__(self, clock: Callable[[], float] = time.time, maxsize: int = 100_000) -> None:
        self._clock = clock
        self._maxsize = maxsize
        self._counts: dict[str, tuple[int, float]] = {}

    async def attempt(self, key: str, policy: ThrottlePolicy) -> float:
        now = self._clock()
        count, at = self._counts.get(key, (0, 0.0))
        if now - at > policy.reset_after:
            count = 0
        wait = policy.wait(count) - (now - at)
        if wait > 0:
            return wait
        if len(self._counts) >= self._maxsize and key not in self._counts:
            self._counts.pop(next(iter(self._counts)))
        self._counts[key] = (count + 1, now)
        return 0.0

    async def release(self, key: str) -> None:
        count, at = self._counts.get(key, (0, 0.0))
        if count > 1:
            self._counts[key] = (count - 1, at)
        else:
            self._counts.pop(key, None)

    async def forgive(self, key: str) -> None:
        self._counts.pop(key, None)


class RedisThrottleStore:
    """The same rule in one Lua script per attempt, so replicas share counts atomically."""

    _ATTEMPT = """
    local now, reset = tonumber(ARGV[1]), tonumber(ARGV[2])
    local factor, step, max = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
    local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
    local t = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
    if now - t > reset then n = 0 end
    if n >= factor then
      local wait = math.min(step * math.floor(n / factor), max) - (now - t)
      if wait > 0 then return tostring(wait) end
    end
    redis.call('HSET', KEYS[1], 'n', n + 1, 't', ARGV[1])
    redis.call('EXPIRE', KEYS[1], math.ceil(reset))
    return '0'
    """
    _RELEASE = """
    local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
    if n > 1 then redis.call('HSET', KEYS[1], 'n', n - 1) else redis.call('DEL', KEYS[1]) end
    return n
    """

    def __init__(self, redis: Redis, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock
        self._attempt = redis.register_script(self._ATTEMPT)
        self._release = redis.register_script(self._RELEASE)

    async def attempt(self, key: str, policy: ThrottlePolicy) -> float:
        args: list[str | float] = [
            repr(self._clock()),
            policy.reset_after,
            policy.failure_factor,
            policy.wait_step,
            policy.max_wait,
        ]
        return float(await self._attempt(keys=[_redis_key(key)], args=args))

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
    ) -> None:
        self._store = store
        self._policy = policy or ThrottlePolicy()
        self._account_policy = account_policy or self._policy.slowing()
        self.health = Degraded("Redis (throttles)", "password logins refused until it is back")

    async def admit(self, keys: list[str], slow: Sequence[str] = ()) -> None:
        """Count an attempt on every key (``slow`` ones under the per-account policy), or
        refuse it while any key must wait."""
        admitted: list[str] = []
        policies = [(k, self._policy) for k in keys] + [(k, self._account_policy) for k in slow]
        try:
            for key, policy in policies:
                wait = await self._store.attempt(key, policy)
                if wait > 0:
                    THROTTLED.inc()
                    for done in admitted:
                        await self._store.release(done)
                    raise Throttled(retry_after=round(wait, 1))
                admitted.append(key)
        except redis_error() as exc:
            self.health.failed(exc)
            raise _unavailable() from None
        self.health.ok()

    async def succeeded(self, forgive: list[str], release: list[str]) -> None:
        """A right password: forget the username's failures, uncount this attempt elsewhere."""
        try:
            for key in forgive:
                await self._store.forgive(key)
            for key in release:
                await self._store.release(key)
        except redis_error() as exc:
            self.health.failed(exc)
            raise _unavailable() from None
        self.health.ok()


def _unavailable() -> TemporarilyUnavailable:
    """Fail closed: without the shared counters, password logins would be unthrottled."""
    return TemporarilyUnavailable(
        "Password login is briefly unavailable; try again shortly.", retry_after=5.0
    )


class WindowLimit:
    """At most ``limit`` events per key in fixed windows of ``window`` seconds (registrations
    per address, personal-data exports per account), counted in Redis when set so replicas
    share it; Redis down fails closed."""

    def __init__(
        self,
        redis: Redis | None,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._limit = limit
        self._window = window
        self._clock = clock
        self._local: dict[tuple[str, int], int] = {}
        self.health = Degraded("Redis (registration limits)", "registrations refused until back")

    async def spend(self, key: str, what: str, whose: str = "from this address") -> None:
        """Count one event, or raise ``RateLimited`` (with the seconds left) over the limit."""
        now = self._clock()
        window = int(now // self._window)
        if await self._add(key, window) > self._limit:
            raise RateLimited(
                f"Too many {what} {whose}; retry later.",
                retry_after=round(self._window - now % self._window, 1),
            )

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
