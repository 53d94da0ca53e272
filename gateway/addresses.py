"""The client's address, read in one place: sessions, audit rows, throttle keys, partner tokens
and the request log all ask :func:`client_address`.

By default it is the TCP peer's address and no forwarding header is believed: anyone can send
``X-Forwarded-For``. Behind a reverse proxy the operator names the proxies
(``GATEWAY_TRUSTED_PROXIES``: addresses or CIDRs, comma-separated); then, and only for requests
whose peer is one of them, ``X-Forwarded-For`` is read right to left, skipping trusted hops,
by uvicorn's ``ProxyHeadersMiddleware`` (which :func:`trusted_proxies` installs).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from typing import Any

from starlette.middleware import Middleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware


def parse_networks(value: str) -> list[str]:
    """The configured proxies, each checked as an address or a network (``ValueError``)."""
    entries = [item.strip() for item in value.split(",") if item.strip()]
    for entry in entries:
        ipaddress.ip_network(entry, strict=False)
    return entries


def trusted_proxies(value: str) -> list[Middleware]:
    """The middleware that believes the named proxies' ``X-Forwarded-For``; none by default."""
    networks = parse_networks(value)
    return [Middleware(ProxyHeadersMiddleware, trusted_hosts=networks)] if networks else []


def client_address(scope: Mapping[str, Any]) -> str | None:
    """The client's IP address, or None when there is none (or a proxy forwarded garbage)."""
    client = scope.get("client")
    return _canonical(client[0]) if client else None


@functools.lru_cache(maxsize=4096)
def _canonical(host: str) -> str | None:
    """Parsing an address costs ~5 us and every request asks (log line, audit, throttle):
    the same clients come back, so the answer is remembered."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None
