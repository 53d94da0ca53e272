"""Invalidations every replica hears, for what processes keep in memory (the token cache).

A write that ends a session or changes an account names what it changed on its unit of work
(``changed(s, session_key(id))``, ``changed(s, account_key(id))``, in the few owner functions
that write those rows); ``Database.transaction()`` hands the names to the broadcast when the
transaction commits, so that no reader can re-cache the old state after hearing them:

- ``RedisBroadcast`` (Redis configured): pub/sub, published after the commit;
- ``PostgresBroadcast`` (PostgreSQL without Redis): ``NOTIFY`` inside the transaction, which
  PostgreSQL delivers only when it commits, heard on a dedicated ``LISTEN`` connection;
- ``FileBroadcast`` (the embedded SQLite file, one server process): in-process, plus a file
  beside the database that other processes on it (operator commands) append to;
- ``Broadcast`` (one process, nothing else can write), ``NoBroadcast`` (several processes and
  no channel: nothing may be cached).

A listener is told ``None`` for "everything": on (re)subscribing, on going down, and when
another process signalled through the file. ``trusted`` says whether a cached entry may be
believed right now; ``epoch`` changes with every invalidation, so a reader that started before
one does not store what it read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.degraded import Degraded
from gateway.store import filewatch

log = logging.getLogger(__name__)

INFO_KEY = "gateway.invalidations"
EVERYTHING = "*"
HEARTBEAT_SECONDS = 0.5
STALE_SECONDS = 1.5  # a channel not heard from for this long is not trusted
Listener = Callable[[frozenset[str] | None], None]
FILE_WATCH = True
"""``FileBroadcast`` stats its file only when inotify says it may have changed; off, on every
check (the reference the tests compare it with)."""


def session_key(session_id: object) -> str:
    return f"s:{session_id}"


def account_key(account_id: object) -> str:
    return f"a:{account_id}"


def changed(s: AsyncSession, keys: Iterable[str]) -> None:
    """Inside a unit of work: these rows change; every replica hears it once it commits."""
    s.info.setdefault(INFO_KEY, set()).update(keys)


def collected(s: AsyncSession) -> frozenset[str]:
    return frozenset(s.info.get(INFO_KEY, ()))


def _encode(keys: frozenset[str], limit: int) -> str:
    payload = " ".join(sorted(keys))
    return payload if len(payload) <= limit else EVERYTHING


def _decode(payload: str) -> frozenset[str] | None:
    keys = frozenset(payload.split())
    return None if EVERYTHING in keys else keys


class Broadcast:
    """One process and nothing else writing: invalidations are delivered in-process."""

    mode = "local"

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self.epoch = 0

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def trusted(self) -> bool:
        return True

    async def before_commit(self, s: AsyncSession, keys: frozenset[str]) -> None:
        """Inside the transaction, just before it commits."""

    async def after_commit(self, keys: frozenset[str]) -> None:
        self._deliver(keys)

    async def close(self) -> None:
        pass

    def _deliver(self, keys: frozenset[str] | None) -> None:
        self.epoch += 1
        for listener in self._listeners:
            listener(keys)


class NoBroadcast(Broadcast):
    """Several processes and no channel between them: never trust a cache."""

    mode = "off"

    @property
    def trusted(self) -> bool:
        return False


class FileBroadcast(Broadcast):
    """The embedded SQLite file: the server delivers its own invalidations in-process; any
    process that commits one (an operator command) also appends a byte to ``path``, and a
    change of that file's size or time clears everything the server holds. The file is
    stat'ed only when an inotify watch says it may have changed (gateway.store.filewatch), or
    on every check where there is no watch."""

    mode = "file"
    _ROTATE_BYTES = 1 << 20

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._path = path
        self._watch = filewatch.watch(path) if FILE_WATCH else None
        self._seen = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    @property
    def trusted(self) -> bool:
        if self._watch is None or self._watch.maybe_changed():
            now = self._stat()
            if now != self._seen:
                self._seen = now
                self._deliver(None)
        return True

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.close()

    async def after_commit(self, keys: frozenset[str]) -> None:
        self._deliver(keys)
        before = self._stat()
        try:
            if before is not None and before[1] > self._ROTATE_BYTES:
                os.truncate(self._path, 0)
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, b".")
            finally:
                os.close(fd)
        except OSError:
            log.exception("could not signal an invalidation through %s", self._path)
            return
        after = self._stat()
        if before == self._seen and before and after and after[1] == before[1] + 1:
            self._seen = after  # only our own byte: nothing to clear


def _stop_if_asked() -> None:
    """Python 3.11's ``wait_for`` can swallow a cancellation that arrives just as what it waits
    for completes (CPython gh-86296); the channel's loop would then go on (reconnecting, or
    heart-beating) while ``close`` waits for it forever. After each wait it checks instead."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class _Channel(Broadcast):
    """A subscription heard in a background task; trusted while it is up and was heard from
    within ``STALE_SECONDS`` (a heartbeat every ``HEARTBEAT_SECONDS``)."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self._task: asyncio.Task[None] | None = None
        self._up = False
        self._heard = 0.0
        self._degraded = Degraded(what, "token checks read the database")

    @property
    def trusted(self) -> bool:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self._up and time.monotonic() - self._heard < STALE_SECONDS

    async def _run(self) -> None:
        while True:
            try:
                await self._subscribe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._down(exc)
                _stop_if_asked()
            await asyncio.sleep(0.2)

    async def _subscribe(self) -> None:
        raise NotImplementedError

    def _came_up(self) -> None:
        """Subscribed: what was missed meanwhile is unknown, so everything goes."""
        self._heard = time.monotonic()
        self._up = True
        self._deliver(None)
        self._degraded.ok()

    def _down(self, exc: BaseException) -> None:
        self._up = False
        self._deliver(None)
        self._degraded.failed(exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class RedisBroadcast(_Channel):
    mode = "redis"

    def __init__(self, url: str, publisher: Any) -> None:
        super().__init__("Redis invalidation channel")
        self._url = url
        # pub/sub ignores the database number: deployments sharing a server keep apart by it
        self.CHANNEL = f"gw:invalidate:{make_url(url).database or 0}"
        self._publisher = publisher  # the shared client (with its retries)
        self._retrying: set[asyncio.Task[None]] = set()

    async def _subscribe(self) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # no silent reconnects: a break must be seen, since messages sent meanwhile are lost
        client = Redis.from_url(self._url, socket_connect_timeout=2.0, retry=Retry(NoBackoff(), 0))
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.CHANNEL)
            pinged = time.monotonic()
            while True:
                message = await pubsub.get_message(timeout=HEARTBEAT_SECONDS)
                _stop_if_asked()
                now = time.monotonic()
                if message is not None:
                    self._heard = now
                    if message["type"] == "subscribe":
                        self._came_up()
                    elif message["type"] == "message":
                        self._deliver(_decode(message["data"].decode()))
                elif now - self._heard > STALE_SECONDS:
                    raise TimeoutError("no answer to the heartbeat")
                if now - pinged >= HEARTBEAT_SECONDS:
                    await pubsub.ping()
                    pinged = now
        finally:
            self._up = False
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                await client.aclose()

    async def after_commit(self, keys: frozenset[str]) -> None:
        self._deliver(keys)  # this process at once; the others when they hear it
        payload = _encode(keys, 64 * 1024)
        try:
            await self._publisher.publish(self.CHANNEL, payload)
        except Exception as exc:
            log.warning("publishing an invalidation failed (%s); retrying", type(exc).__name__)
            task = asyncio.get_running_loop().create_task(self._retry(payload))
            self._retrying.add(task)
            task.add_done_callback(self._retrying.discard)

    async def _retry(self, payload: str) -> None:
        """Cached entries live at most a few seconds: retrying longer is pointless."""
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            with contextlib.suppress(Exception):
                await self._publisher.publish(self.CHANNEL, payload)
                return
        log.error("an invalidation could not be published; other replicas rely on max age")

    async def close(self) -> None:
        for task in list(self._retrying):
            task.cancel()
        await super().close()


class PostgresBroadcast(_Channel):
    CHANNEL = "gateway_invalidate"
    APPLICATION = "gateway-invalidations"  # the LISTEN connection, in pg_stat_activity
    mode = "postgres"

    def __init__(self, database_url: str) -> None:
        super().__init__("PostgreSQL invalidation channel")
        url = make_url(database_url)
        query = {k: v for k, v in url.query.items() if k != "prepared_statement_cache_size"}
        self._dsn = url.set(drivername="postgresql", query=query).render_as_string(False)

    async def before_commit(self, s: AsyncSession, keys: frozenset[str]) -> None:
        """``NOTIFY`` is delivered when (and only if) the transaction commits."""
        payload = _encode(keys, 7000)
        await s.execute(text("SELECT pg_notify(:c, :p)"), {"c": self.CHANNEL, "p": payload})

    async def _subscribe(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(
            self._dsn, timeout=5.0, server_settings={"application_name": self.APPLICATION}
        )
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(self.CHANNEL, self._notified)
            self._came_up()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), HEARTBEAT_SECONDS)
                await asyncio.wait_for(conn.fetchval("SELECT 1"), STALE_SECONDS)
                _stop_if_asked()
                self._heard = time.monotonic()
            raise ConnectionError("the LISTEN connection was closed")
        finally:
            self._up = False
            conn.terminate()

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._heard = time.monotonic()
        self._deliver(_decode(payload))


def for_deployment(
    database_url: str, redis_url: str | None, publisher: Any, processes: int
) -> Broadcast:
    """Redis when there is one; else PostgreSQL's own; else in-process for one process (with
    the file signal for operator commands on the SQLite file); else nothing to trust."""
    if redis_url and publisher is not None:
        return RedisBroadcast(redis_url, publisher)
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return PostgresBroadcast(database_url)
    if processes > 1:
        return NoBroadcast()
    if url.database and url.database != ":memory:":
        return FileBroadcast(Path(f"{url.database}.invalidations"))
    return Broadcast()
