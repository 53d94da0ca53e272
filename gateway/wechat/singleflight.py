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


def code_key(appid: str, code: str) -> bytes:
    """Keys hold a hash, so a memory dump holds no usable code (bytes: the memo keeps many)."""
    return hashlib.sha256(f"{appid}\x00{code}".encode()).digest()


def _same(value: Any) -> Any:
    return value


class SingleFlight(Generic[T]):
    """``pack`` and ``unpack`` let the memo keep an outcome in a compact form: it holds every
    outcome of the last ``ttl`` seconds (up to ``maxsize``), so its memory is the login rate
    times the TTL times an entry's size."""

    def __init__(
        self,
        ttl: float,
        *,
        maxsize: int = 5_000,
        clock: Callable[[], float] = time.monotonic,
        pack: Callable[[T], Any] = _same,
        unpack: Callable[[Any], T] = _same,
    ) -> None:
        self._ttl = ttl
        self._maxsize = maxsize
        self._clock = clock
        self._pack = pack
        self._unpack = unpack
        self._inflight: dict[bytes, asyncio.Future[T]] = {}
        self._done: OrderedDict[bytes, tuple[float, Any]] = OrderedDict()

    async def run(
        self, key: bytes, call: Callable[[], Awaitable[T]], remember: Callable[[Exception], bool]
    ) -> T:
        """The exchange runs as its own task: a caller that gives up does not cancel it."""
        outcome = self._recall(key)
        if outcome is not None:
            return self._unpack(_unwrap(outcome))
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._exchange(key, call, remember))
            task.add_done_callback(_retrieve)
            self._inflight[key] = task
        return await asyncio.shield(task)

    async def _exchange(
        self, key: bytes, call: Callable[[], Awaitable[T]], remember: Callable[[Exception], bool]
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

    def _recall(self, key: bytes) -> Any:
        entry = self._done.get(key)
        if entry is None:
            return None
        if entry[0] < self._clock():
            del self._done[key]
            return None
        return entry[1]

    def _store(self, key: bytes, outcome: T | BaseException) -> None:
        """Entries are kept in expiry order (one TTL for all), so the expired ones are at the
        front and leave as new ones come: memory follows the login rate over one TTL, not
        every login since start-up up to ``maxsize``. A result is kept packed."""
        if self._ttl <= 0:
            return
        kept = outcome if isinstance(outcome, BaseException) else self._pack(outcome)
        now = self._clock()
        done = self._done
        while done and next(iter(done.values()))[0] < now:
            done.popitem(last=False)
        done[key] = (now + self._ttl, kept)
        done.move_to_end(key)
        while len(done) > self._maxsize:
            done.popitem(last=False)


def _unwrap(outcome: Any) -> Any:
    if isinstance(outcome, BaseException):
        # a remembered error is raised again and again: drop the traceback each raise adds
        raise outcome.with_traceback(None)
    return outcome


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
