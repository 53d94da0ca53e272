"""Where the gateway is reached: the origin its pages check ``Origin`` against and the issuer
websites know it by.

Unless ``[web] issuer`` names it, it is the origin of the request itself: scheme, host and
port as the browser sent them. Behind a reverse proxy the operator names the proxies
(``GATEWAY_TRUSTED_PROXIES``, ``gateway.addresses``) and uvicorn's proxy middleware takes the
scheme from their ``X-Forwarded-Proto``; nobody else's forwarded headers are believed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request

from gateway.config import GatewayConfig

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(request: Request, config: GatewayConfig) -> str:
    """``scheme://host[:port]`` of this gateway, lowercase, without a default port."""
    if config.web.issuer:
        return _origin_of(config.web.issuer)
    return _origin_of(f"{request.url.scheme}://{request.url.netloc}")


def issuer(request: Request, config: GatewayConfig) -> str:
    """The issuer: ``[web] issuer`` exactly as configured (no trailing slash), else the
    request's origin."""
    return config.web.issuer or origin(request, config)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def same_origin(value: str, expected: str) -> bool:
    """Whether an ``Origin`` header names ``expected`` (``null`` and garbage never do)."""
    if not value.startswith(("http://", "https://")):
        return False
    return _origin_of(value) == expected
