"""Structured logs: JSON lines with the request id, and one access line per request.

Nothing here logs a query string, a header or a body: those may hold codes and tokens.
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import itertools
import json
import linecache
import logging
import math
import queue
import re
import secrets
import threading
import time
from logging.handlers import QueueHandler
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.addresses import client_address
from gateway.metrics import HTTP_SECONDS

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
access_log = logging.getLogger("gateway.access")


_encode = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps`` with any non-default option builds a new encoder per call."""


class AccessFields(dict[str, Any]):
    """The access line's fields, as ``RequestLog`` makes them (the type marks them)."""


_ACCESS_KEYS = ("request_id", "method", "path", "status", "duration_ms", "client_ip")
_ACCESS_LINE = (
    '{"ts": %s, "level": "info", "logger": "gateway.access", "msg": "request", '
    '"request_id": %s, "method": %s, "path": %s, "status": %s, "duration_ms": %s, '
    '"client_ip": %s}'
)
_string = json.encoder.encode_basestring  # what ``_encode`` writes a str as (ensure_ascii off)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        if type(fields) is AccessFields:
            line = _access_line(record, fields)
            if line is not None:
                return line
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            entry["request_id"] = rid
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encode(entry)

    def formatException(self, ei: Any) -> str:
        """The traceback with its source lines, without keeping the files they came from:
        ``linecache`` holds every file a traceback quotes for the life of the process (one
        PostgreSQL outage's traceback kept ~3.7 MiB of SQLAlchemy and asyncpg source)."""
        before = set(linecache.cache)
        try:
            return super().formatException(ei)
        finally:
            for name in set(linecache.cache) - before:
                linecache.cache.pop(name, None)


def _access_line(record: logging.LogRecord, fields: AccessFields) -> str | None:
    """The access line as ``JsonFormatter.format`` writes it, byte for byte, from a template:
    the generic path spends most of its ~5 us in the JSON encoder's Python callback for each
    float. ``None`` (the generic path) for any record not exactly as ``RequestLog`` makes it."""
    if tuple(fields) != _ACCESS_KEYS:
        return None
    rid, method, path, status, duration, ip = fields.values()
    if (
        record.msg != "request"
        or record.args
        or record.levelname != "INFO"
        or record.name != "gateway.access"
        or record.exc_info
        or getattr(record, "request_id", None) != rid
        or type(rid) is not str
        or type(method) is not str
        or type(path) is not str
        or type(ip) is not str
        or type(status) is not int
        or type(duration) is not float
        or not math.isfinite(duration)
    ):
        return None
    ts = float.__repr__(round(record.created, 3))
    return _ACCESS_LINE % (
        ts, _string(rid), _string(method), _string(path), status, float.__repr__(duration),
        _string(ip),
    )  # fmt: skip


class _Enqueue(QueueHandler):
    """Hands records to the writer thread as they are: formatting and the write to stderr
    happen there, off the event loop. The request id is taken now, while it is in context."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return record


class _BatchedStream(logging.StreamHandler):  # type: ignore[type-arg]
    """Formats on the writer thread and writes what has queued up in one ``write``: one
    system call per burst of lines instead of one (with a flush) per request."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._pending.append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        lines, self._pending = "".join(self._pending), []
        try:
            if lines:
                self.stream.write(lines)
            super().flush()
        except (OSError, ValueError):  # the stream is gone (closed at exit): lines are lost,
            pass  # as logging's own handleError would lose them, but the writer lives on


class _Writer:
    """The writer thread: every ``WRITE_INTERVAL`` it formats what has queued and writes it
    in one system call. Nobody waits on the queue, so handing a record over wakes no thread
    (a waiting ``QueueListener`` costs a wake-up and a GIL hand-off per line)."""

    def __init__(
        self, records: queue.SimpleQueue[logging.LogRecord], handler: logging.Handler
    ) -> None:
        self._records = records
        self._handler = handler
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-log-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(WRITE_INTERVAL):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        while True:
            try:
                record = self._records.get_nowait()
            except queue.Empty:
                break
            if record.levelno >= self._handler.level:
                self._handler.handle(record)
        self._handler.flush()


WRITE_INTERVAL = 0.05
"""How long a log line may wait to be written: short enough to read logs live."""
_writer: _Writer | None = None


def configure(level: str, fmt: str) -> None:
    global _writer
    handler = _BatchedStream()
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    if _writer is not None:
        _writer.stop()
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _writer = _Writer(records, handler)
    _writer.start()
    # Python's logging "Optimization" switches: no caller frame walk, thread or process
    # lookups per record; no format here uses them, and the access line is on every request
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [_Enqueue(records)]
    root.setLevel(level.upper())
    quiet_secret_loggers()
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # strawberry logs every GraphQL error; unexpected ones are logged by gateway.api instead
    logging.getLogger("strawberry.execution").setLevel(logging.CRITICAL)
    logging.getLogger("uvicorn.access").disabled = True  # replaced by gateway.access


@atexit.register
def _flush() -> None:
    """Write what is still queued before the process ends."""
    if _writer is not None:
        _writer.stop()


def quiet_secret_loggers() -> None:
    """httpx logs every request URL at INFO (WeChat URLs carry the secret and the code), and
    aiosqlite logs every statement with its parameters (openids) at DEBUG."""
    for name in ("httpx", "httpcore", "aiosqlite"):
        logging.getLogger(name).setLevel(logging.WARNING)


class RequestLog:
    """Gives every request an id (``X-Request-Id`` in and out) and logs one line for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        rid = given if given and _SAFE_ID.match(given) else _new_id()
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope["path"] if scope["path"] in _ROUTES else "other"
            _timer(scope["method"], route, status).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                fields = AccessFields(
                    request_id=rid,
                    method=scope["method"],
                    path=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    client_ip=client_address(scope),
                )
                access_log.handle(_access_record(fields, rid))
            request_id.reset(token)


_ids = itertools.count(secrets.randbits(64))


def _new_id() -> str:
    """16 hex digits, counting up from a random start per process: unique within a process,
    apart across processes, and without a random-number system call per request."""
    return f"{next(_ids) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


_ACCESS_PROTOTYPE = vars(
    logging.LogRecord("gateway.access", logging.INFO, __file__, 0, "request", None, None)
)


def _access_record(fields: dict[str, Any], rid: str) -> logging.LogRecord:
    """The access line's record, copied from a prototype: ``LogRecord.__init__`` costs ~10 us
    (it looks up the time, thread, process and caller), on every request. Handlers, filters
    and caplog see an ordinary record."""
    record = logging.LogRecord.__new__(logging.LogRecord)
    record.__dict__.update(_ACCESS_PROTOTYPE)
    now = time.time()
    record.created = now
    record.msecs = (now - int(now)) * 1000
    record.fields = fields
    record.request_id = rid
    return record


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


@functools.cache
def _timer(method: str, route: str, status: int) -> Any:
    """The histogram child for one label set: ``labels()`` takes a lock and hashes per call."""
    return HTTP_SECONDS.labels(method, route, str(status))


_ROUTES = frozenset(
    {"/graphql", "/healthz", "/readyz", "/metrics", "/.well-known/jwks.json", "/sandbox/code"}
)
