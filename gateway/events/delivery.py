"""Sending one webhook, per the Standard Webhooks spec: the only module of ``gateway.events``
that speaks HTTP (an import contract holds it).

The body is the event as the partner sees it (``render.body``), as compact JSON; the headers
``webhook-id`` (the event's id: the same in every attempt, so a receiver drops duplicates),
``webhook-timestamp`` (this attempt's time) and ``webhook-signature``, made by the
``standardwebhooks`` library from the partner's ``whsec_`` secret (never a hand-written HMAC).

Before each attempt the URL is checked again on the addresses its host resolves to now
(``webhook_urls``), and the request goes to the address that was checked, with the URL's host
in ``Host`` and in TLS's SNI and certificate check: what DNS answers a moment later changes
nothing. Redirects are not followed (a 3xx is a failed attempt); the response body is never
read. httpx's exceptions, as met here::

    httpx.HTTPError
     └ TransportError: the attempt failed, retried later
        ├ TimeoutException (connect, read, write, pool)
        └ NetworkError, ProtocolError, ... (refused, reset, TLS)
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from gateway.events.queue import Outcome
from gateway.webhook_urls import Address, RefusedUrl, Target, UrlPolicy

USER_AGENT = "wechat-identity-gateway-webhooks/1"


def encode(body: dict[str, Any]) -> bytes:
    """The bytes that are signed and sent."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(secret: str, message_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
    }


class Sender:
    """One HTTP client per receiving host (a connection kept alive is reused only for the host
    whose name it was opened and verified for), each bounded to ``concurrency`` connections."""

    def __init__(self, policy: UrlPolicy, timeout: float, concurrency: int) -> None:
        self._policy = policy
        self._timeout = timeout
        self._concurrency = concurrency
        self._clients: dict[str, httpx.AsyncClient] = {}

    async def send(self, url: str, secret: str, message_id: str, body: bytes) -> Outcome:
        """One attempt, name resolution included, whatever happens within ``timeout``: its
        outcome, never an exception for the receiver's faults."""
        try:
            async with asyncio.timeout(self._timeout):
                target = await self._policy.resolve(url)
                headers = signed_headers(secret, message_id, datetime.now(UTC), body)
                status = await self._post(target, headers, body)
        except RefusedUrl as exc:
            return Outcome(False, error=f"refused: {exc}")
        except (TimeoutError, httpx.TimeoutException):
            return Outcome(False, error=f"timeout after {self._timeout:g} s")
        except httpx.HTTPError as exc:
            return Outcome(False, error=f"connection: {type(exc).__name__}")
        if 200 <= status < 300:
            return Outcome(True, status)
        return Outcome(False, status, f"HTTP {status}")

    async def _post(self, target: Target, headers: dict[str, str], body: bytes) -> int:
        """To each checked address in turn until one connects (``localhost`` may be ``::1``
        first, where nothing listens)."""
        *others, last = target.addresses
        for address in others:
            try:
                return await self._post_to(target, address, headers, body)
            except httpx.ConnectError:
                continue
        return await self._post_to(target, last, headers, body)

    async def _post_to(
        self, target: Target, address: Address, headers: dict[str, str], body: bytes
    ) -> int:
        client = self._client(target.host)
        request = client.build_request(
            "POST",
            _pinned(target, address),
            content=body,
            headers={
                **headers,
                "host": target.url.netloc,
                "content-type": "application/json",
                "user-agent": USER_AGENT,
            },
            extensions={"sni_hostname": target.host} if target.url.scheme == "https" else {},
        )
        response = await client.send(request, stream=True)
        await response.aclose()
        return response.status_code

    def _client(self, host: str) -> httpx.AsyncClient:
        client = self._clients.get(host)
        if client is None:
            limits = httpx.Limits(max_connections=self._concurrency, keepalive_expiry=30)
            client = httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, trust_env=False, limits=limits
            )
            self._clients[host] = client
        return client

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def _pinned(target: Target, address: Address) -> str:
    """The URL with a checked address in place of the host name."""
    host = f"[{address}]" if address.version == 6 else str(address)
    path = target.url.path or "/"
    query = f"?{target.url.query}" if target.url.query else ""
    return f"{target.url.scheme}://{host}:{target.port}{path}{query}"
