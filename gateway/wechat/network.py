"""The network under the WeChat client: the shared httpx client (``http_client``) on a
connection pool of its own (``IdlePool``), httpcore's HTTP/1.1 connections and anyio streams,
with the idle-connection check made cheap.

httpcore's pool asks every pooled connection "did the server close you?" each time it hands
out a connection and each time one comes back (``get_extra_info("is_readable")``, a zero-timeout
poll of the socket). Its anyio stream finds the socket through anyio's typed attributes, which
build a dict of every attribute of the socket on each lookup: ~10 us a connection a check, so
with a dozen idle connections ~0.3 ms of a login's ~5 ms of CPU in the bench. Here the socket
is looked up once, when the stream is made, and the poll is the same as httpcore's.
"""

from __future__ import annotations

import asyncio
import functools
import select
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from types import TracebackType
from typing import Any

import httpcore
import httpx

from gateway.compat.httpx import transport_on

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


def is_socket_readable(sock: socket.socket | None) -> bool:
    """httpcore's test (``httpcore._utils``): a socket gone, or with data or EOF to read, is
    readable; a pooled connection that is readable while idle was closed by the server."""
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    """An httpcore stream that knows its socket (the timeouts are httpcore's interface)."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return is_socket_readable(self._socket)
        return self._inner.get_extra_info(info)


class PollingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend (what its pool uses on asyncio), whose streams answer
    ``is_readable`` from a socket found once."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


Key = tuple[bytes, bytes, int]
"""An origin as a dictionary key (httpcore's ``Origin`` is not hashable)."""


class IdlePool:
    """The WeChat client's connection pool: HTTP/1.1 connections on ``backend``, the idle ones
    kept per origin and handed out last in, first out (httpcore's pool interface:
    ``handle_async_request`` and ``aclose``).

    httpcore's ``AsyncConnectionPool`` walks every connection (asking each idle one whether the
    server closed it: a poll of its socket) and every queued request each time it hands out a
    connection and each time one comes back, each walk under a cancellation shield: ~15% of a
    returning login's CPU in the bench. Here a request takes the connection that came back last,
    checked alone (expired, or closed by the server, it is closed and the next one taken); a
    connection that comes back is kept, and the oldest idle one checked and closed when expired
    or beyond ``max_keepalive``. At most ``max_connections`` requests are on the wire at once,
    each on a connection of its own; one more waits for a slot up to the request's pool
    timeout (``PoolTimeout``), as httpcore's does.
    """

    def __init__(
        self,
        backend: httpcore.AsyncNetworkBackend,
        *,
        ssl_context: ssl.SSLContext | None,
        max_connections: int | None,
        max_keepalive: int | None,
        keepalive_expiry: float | None,
    ) -> None:
        self._backend = backend
        self._ssl_context = ssl_context
        self._slots = asyncio.Semaphore(max_connections) if max_connections else None
        self._max_keepalive = max_keepalive if max_keepalive is not None else 2**31
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[Key, list[httpcore.AsyncHTTPConnection]] = {}
        self._busy: set[httpcore.AsyncHTTPConnection] = set()

    @property
    def connections(self) -> list[httpcore.AsyncHTTPConnection]:
        """Every open connection, busy or idle."""
        return [*self._busy, *(c for idle in self._idle.values() for c in idle)]

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        origin = request.url.origin
        key = (origin.scheme, origin.host, origin.port)
        await self._admit(request)
        try:
            connection = await self._take(origin, key)
            self._busy.add(connection)
            try:
                response = await connection.handle_async_request(request)
            except BaseException:
                await self._release(connection, key)
                raise
        except BaseException:
            self._free_slot()
            raise
        assert isinstance(response.stream, AsyncIterable)
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_Returning(response.stream, self, connection, key),
            extensions=response.extensions,
        )

    async def _admit(self, request: httpcore.Request) -> None:
        if self._slots is None:
            return
        if not self._slots.locked():
            await self._slots.acquire()  # a free slot is taken without suspending
            return
        timeout = request.extensions.get("timeout", {}).get("pool")
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout)
        except TimeoutError:
            raise httpcore.PoolTimeout("no connection free in time") from None

    def _free_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    async def _take(self, origin: httpcore.Origin, key: Key) -> httpcore.AsyncHTTPConnection:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.has_expired():
                return connection
            await connection.aclose()
        return httpcore.AsyncHTTPConnection(
            origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
            network_backend=self._backend,
        )

    async def _release(self, connection: httpcore.AsyncHTTPConnection, key: Key) -> None:
        """A connection whose request is over: kept if it can serve another, else closed."""
        self._busy.discard(connection)
        if connection.is_closed():
            return
        if not connection.is_idle():  # the exchange ended half-way: its state is unknown
            await connection.aclose()
            return
        idle = self._idle.setdefault(key, [])
        idle.append(connection)
        if len(idle) > self._max_keepalive or idle[0].has_expired():
            await idle.pop(0).aclose()

    async def returned(self, connection: httpcore.AsyncHTTPConnection, key: Key) -> None:
        """A response's body was closed: its connection and its slot are free."""
        try:
            await self._release(connection, key)
        finally:
            self._free_slot()

    async def aclose(self) -> None:
        closing = self.connections
        self._idle.clear()
        self._busy.clear()
        for connection in closing:
            await connection.aclose()

    async def __aenter__(self) -> IdlePool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()


class _Returning:
    """A response's body; closing it (httpx does, once read) gives its connection back."""

    def __init__(
        self,
        stream: AsyncIterable[bytes],
        pool: IdlePool,
        connection: httpcore.AsyncHTTPConnection,
        key: Key,
    ) -> None:
        self._stream = stream
        self._pool = pool
        self._connection = connection
        self._key = key
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._stream, "aclose", None)
            if close is not None:
                await close()
        finally:
            await self._pool.returned(self._connection, self._key)


def default_timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(seconds, 2.0))


def http_client(
    base_url: str, timeout_seconds: float, sandbox: Any = None, *, concurrency: int = 64
) -> httpx.AsyncClient:
    """The one shared client for every WeChat call (pooled connections, bounded timeouts);
    ``sandbox``, an ASGI app, answers in-process instead of the network. ``concurrency``
    connections are kept alive: as many as the WeChat client has calls on the wire, so that a
    steady load reopens none (16 kept made the logins of 32 clients reopen 25-40 a second)."""
    transport: httpx.AsyncBaseTransport = (
        httpx.ASGITransport(app=sandbox)
        if sandbox is not None
        else transport_on(functools.partial(_pool, keep=concurrency))
    )
    return httpx.AsyncClient(
        base_url=base_url,
        transport=transport,
        timeout=default_timeout(timeout_seconds),
        headers={"user-agent": "wechat-identity-gateway"},
    )


def _pool(ssl_context: ssl.SSLContext, *, keep: int) -> IdlePool:
    """The connections to WeChat (``wechat.network``): a request takes the one used last, none
    is walked per request; ``keep`` kept alive, each for at most 5 s idle."""
    return IdlePool(
        PollingBackend(),
        ssl_context=ssl_context,
        max_connections=200,
        max_keepalive=keep,
        keepalive_expiry=5.0,
    )
