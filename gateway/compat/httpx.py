"""httpx's internals the WeChat client relies on (checked against httpx 0.28.1 and httpcore
1.0.9). Only ``gateway.wechat`` imports this module (an import-linter contract);
``tests/test_compat.py`` checks the assumption against the installed httpx.

httpx's ``AsyncHTTPTransport`` takes no network backend: it builds its httpcore connection
pool (``_pool``) itself, on httpcore's default backend. ``transport_on`` builds the transport
as httpx does and gives it a pool, made with the same settings, on the backend given
(``wechat.network``: the same anyio streams with a cheaper idle-connection check).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

import httpcore
import httpx


class Pool(Protocol):
    """What ``AsyncHTTPTransport`` asks of its ``_pool`` (httpcore's pool interface)."""

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None: ...


def transport_on(pool: Callable[[ssl.SSLContext], Pool]) -> httpx.AsyncHTTPTransport:
    """An httpx transport (no proxy: ``AsyncClient`` still mounts the environment's proxies
    on transports of their own) whose requests go through the pool ``pool`` makes, with the
    transport's TLS context. One TLS context for both: each loads the CA bundle (~0.8 MiB and
    ~15 ms), and the transport's own pool is replaced."""
    ssl_context = httpx.create_ssl_context()
    transport = httpx.AsyncHTTPTransport(verify=ssl_context)
    transport._pool = pool(ssl_context)  # type: ignore[assignment]
    return transport
