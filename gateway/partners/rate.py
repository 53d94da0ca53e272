"""A per-partner request budget (fixed one-minute windows), shared through Redis when set.

Redis down: partner reads go on unmetered (they are authenticated and audited), logged once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway.degraded import Degraded
from gateway.errors import RateLimited
from gateway.store.shared_state import redis_error

if TYPE_CHECKING:
    from redis.asyncio import Redis


class PartnerRate:
    def __init__(self, redis: Redis | None, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock
        self._local: dict[tuple[str, int], int] = {}
        self.health = Degraded("Redis (partner rate limits)", "partner reads unmetered")

    async def spend(self, client_id: str, cost: int, per_minute: int) -> None:
        window = int(self._clock() // 60)
        used = await self._add(client_id, window, cost)
        if used is not None and used > per_minute:
            retry = 60 - self._clock() % 60
            raise RateLimited(
                "Over %(count)s lookups a minute for this partner.",
                retry_after=round(retry, 1),
                count=per_minute,
            )

    async def _add(self, client_id: str, window: int, cost: int) -> int | None:
        if self._redis is None:
            for stale in [k for k in self._local if k[1] < window]:
                del self._local[stale]
            self._local[(client_id, window)] = self._local.get((client_id, window), 0) + cost
            return self._local[(client_id, window)]
        key = f"gw:partner-rate:{client_id}:{window}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, cost)
                pipe.expire(key, 120)
                used, _ = await pipe.execute()
        except redis_error() as exc:
            self.health.failed(exc)
            return None
        self.health.ok()
        return int(used)
