"""httpx's internals the WeChat client relies on (checked against httpx 0.28.1 and httpcore
1.0.9). Only ``gateway.wechat`` imports this module (an import-linter contract);
``tests/test_compat.py`` checks the assumption against the installed httpx.

httpx's ``AsyncHTTPTransport`` takes no network backend: it builds its httpcore connection
pool (``_pool``) itself, on httpcore's default backend. ``transport_on`` builds the transport
as httpx does and gives it a pool, made with the same settings, on the backend given
(``wechat.network``: the same anyio streams with a cheaper idle-connection check).
"""

from __future__ import annotations

import httpcore
import httpx


def transport_on(
    backend: httpcore.AsyncNetworkBackend, limits: httpx.Limits
) -> httpx.AsyncHTTPTransport:
    """An httpx transport (no proxy: ``AsyncClient`` still mounts the environment's proxies
    on transports of their own) whose connections are ``backend``'s. One TLS context for both:
    each loads the CA bundle (~0.8 MiB and ~15 ms), and the transport's own pool is replaced."""
    ssl_context = httpx.create_ssl_context()
    transport = httpx.AsyncHTTPTransport(limits=limits, verify=ssl_context)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )
    return transport
