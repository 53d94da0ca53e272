"""One upstream call per login code, however often the client sends it.

A code works once at WeChat; a client that retries (double tap, flaky network) sends it again.
Concurrent calls with the same key share one in-flight exchange, and its outcome is remembered
for a short while, so a late retry gets the first answer instead of ``CODE_USED``. Transient
failures are not remembered: a retry after them may succeed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def code_key(appid: str, code: str) -> str:
    """Keys hold a hash, so a memory dump holds no usable code."""
    return hashlib.sha256(f"{appid}\x00{code}".encode()).hexdigest()


class SingleFlight(Generic[T]):
    def __init__(
        self, ttl: float, *, maxsize: int = 50_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._maxsize = maxsize
        self._clock = clock
        self._inflight: dict[str, asyncio.Future[T]] = {}
        self._done: OrderedDict[str, tuple[float, T | BaseException]] = OrderedDict()

    async def run(
        self, key: str, call: Callable[[], Awaitable[T]], remember: Callable[[Exception], bool]
    ) -> T:
        """The exchange runs as its own task: a caller that gives up does not cancel it."""
        outcome = self._recall(key)
        if outcome is not None:
            return _unwrap(outcome)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._exchange(key, call, remember))
            task.add_done_callback(_retrieve)
            self._inflight[key] = task
        return await asyncio.shield(task)

    async def _exchange(
        self, key: str, call: Callable[[], Awaitable[T]], remember: Callable[[Exception], bool]
    ) -> T:
        try:
            result = await call()
        except Exception as exc:
            if remember(exc):
                self._store(key, exc)
            raise
        else:
            self._store(key, result)
            return result
        finally:
            self._inflight.pop(key, None)

    def _recall(self, key: str) -> T | BaseException | None:
        entry = self._done.get(key)
        if entry is None:
            return None
        if entry[0] < self._clock():
            del self._done[key]
            return None
        return entry[1]

    def _store(self, key: str, outcome: T | BaseException) -> None:
        if self._ttl <= 0:
            return
        self._done[key] = (self._clock() + self._ttl, outcome)
        self._done.move_to_end(key)
        while len(self._done) > self._maxsize:
            self._done.popitem(last=False)


def _unwrap(outcome: T | BaseException) -> T:
    if isinstance(outcome, BaseException):
        # a remembered error is raised again and again: drop the traceback each raise adds
        raise outcome.with_traceback(None)
    return outcome


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
