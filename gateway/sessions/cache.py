"""What a token check reads (the session's liveness and expiry, the account's view), kept in
memory so that most checks need no database round trip.

Correctness rests on the broadcast (``gateway.store.broadcast``): every write that ends a
session or changes an account names it, and every replica drops it when the write commits. An
entry is believed only while the broadcast is trusted (subscribed and heard from lately); it is
stored only if no invalidation arrived since its read began (``epoch``), and it lives at most
``max_age`` seconds whatever happens, as a safety net.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.accounts.model import AccountView
from gateway.sessions.model import Viewer
from gateway.store.broadcast import Broadcast


@dataclass(frozen=True, slots=True)
class Cached:
    """``viewer``: the caller a check of this session answers, made once when stored (it is
    immutable, and every field of it is the entry's own)."""

    account_id: uuid.UUID
    app_key: str
    expires_at: datetime
    created_at: datetime
    account: AccountView
    stored_at: float
    viewer: Viewer


MAX_AGE_SECONDS = 5.0
"""The safety net: an entry is believed this long at most, whatever the broadcast says."""


class TokenCache:
    def __init__(
        self,
        broadcast: Broadcast,
        size: int = 10_000,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._broadcast = broadcast
        self._size = size
        self._max_age = max_age
        self._clock = clock
        self._entries: dict[uuid.UUID, Cached] = {}
        self._by_account: dict[uuid.UUID, set[uuid.UUID]] = {}
        broadcast.listen(self._invalidate)

    @property
    def enabled(self) -> bool:
        return self._size > 0 and self._broadcast.mode != "off"

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, session_id: uuid.UUID) -> Cached | None:
        if not self._entries or not self._broadcast.trusted:
            return None
        entry = self._entries.get(session_id)
        if entry is not None and self._clock() - entry.stored_at > self._max_age:
            self._remove(session_id)
            return None
        return entry

    def epoch(self) -> int | None:
        """Before a database read whose answer may be stored: None when it may not be."""
        if not self.enabled or not self._broadcast.trusted:
            return None
        return self._broadcast.epoch

    def put(
        self,
        epoch: int | None,
        session_id: uuid.UUID,
        account: AccountView,
        app_key: str,
        expires_at: datetime,
        created_at: datetime,
    ) -> None:
        """Store what a read that began at ``epoch`` found, unless something was invalidated
        since (the read may have seen the state before it)."""
        if epoch is None or epoch != self._broadcast.epoch or not self._broadcast.trusted:
            return
        self._remove(session_id)
        now = self._clock()
        self._drop_stale(now)
        while len(self._entries) >= self._size:
            self._remove(next(iter(self._entries)))  # the oldest
        viewer = Viewer(account.id, session_id, app_key, expires_at, account, created_at)
        entry = Cached(account.id, app_key, expires_at, created_at, account, now, viewer)
        self._entries[session_id] = entry
        self._by_account.setdefault(account.id, set()).add(session_id)

    def _drop_stale(self, now: float) -> None:
        """Entries past ``max_age`` leave from the front (entries are in the order they were
        stored, each put moving its own to the back): an entry nobody reads again would
        otherwise stay until ``size`` newer ones pushed it out, and a process signing in a
        few sessions a second grew by ~0.8 KiB each until then (issue 29: ~8 MiB at 10,000).
        Memory is now the put rate times ``max_age``; ``size`` caps a burst."""
        entries = self._entries
        while entries:
            oldest = next(iter(entries))
            if now - entries[oldest].stored_at <= self._max_age:
                return
            self._remove(oldest)

    def _remove(self, session_id: uuid.UUID) -> None:
        entry = self._entries.pop(session_id, None)
        if entry is None:
            return
        sessions = self._by_account.get(entry.account_id)
        if sessions is not None:
            sessions.discard(session_id)
            if not sessions:
                del self._by_account[entry.account_id]

    def _invalidate(self, keys: frozenset[str] | None) -> None:
        if keys is None:
            self._entries.clear()
            self._by_account.clear()
            return
        for key in keys:
            kind, _, value = key.partition(":")
            try:
                target = uuid.UUID(value)
            except ValueError:
                continue
            if kind == "s":
                self._remove(target)
            elif kind == "a":
                for session_id in list(self._by_account.get(target, ())):
                    self._remove(session_id)
