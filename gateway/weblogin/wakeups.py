"""Wake-ups for browsers long-polling a ticket (``webLoginStatus(waitSeconds)``).

A waiting request sleeps on an ``asyncio.Event`` instead of reading the database every few
milliseconds. A change made in this process sets it at once; one made by another process is
heard through the deployment's broadcast (Redis pub/sub, PostgreSQL NOTIFY, the SQLite file:
``gateway.store.broadcast``), which names the ticket (``tickets.wake_name``). Where no
channel exists, or a message is lost, the waiter reads again every ``poll_seconds`` anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.store.broadcast import Broadcast


class Wakeups:
    def __init__(self, broadcast: Broadcast) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}
        broadcast.listen(self._heard)

    def _heard(self, names: frozenset[str] | None) -> None:
        """A broadcast: the named tickets changed (``None``: anything may have)."""
        if names is None:
            for events in self._waiting.values():
                for event in events:
                    event.set()
            return
        for name in names:
            self.wake(name)

    def wake(self, name: str) -> None:
        for event in self._waiting.get(name, ()):
            event.set()

    @contextmanager
    def watch(self, name: str) -> Iterator[asyncio.Event]:
        """An event set when ``name`` changes; registered before the caller reads, so a
        change between its read and its wait is not missed."""
        event = asyncio.Event()
        self._waiting.setdefault(name, set()).add(event)
        try:
            yield event
        finally:
            events = self._waiting.get(name)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiting[name]

    @property
    def waiting(self) -> int:
        """Requests waiting now (for tests and metrics)."""
        return sum(len(events) for events in self._waiting.values())


async def until(event: asyncio.Event, seconds: float) -> bool:
    """Wait for ``event`` at most ``seconds``; whether it was set (and clear it for the next)."""
    try:
        await asyncio.wait_for(event.wait(), timeout=max(seconds, 0.0))
    except TimeoutError:
        return False
    event.clear()
    return True
