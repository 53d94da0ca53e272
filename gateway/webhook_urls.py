"""Which URLs the gateway may send partners' webhooks to: no SSRF into the company's network.

A webhook URL is typed by an operator but its host's addresses are whatever DNS says at the
moment of sending, so the rule is applied twice: when the URL is set (``gateway partners add
--webhook-url``, ``partners webhook --url``, a config partner's ``webhook_url``), and again at
every delivery on the addresses just resolved, which the delivery then connects to (a name that
changes its answer in between, DNS rebinding, cannot point a delivery elsewhere).

- ``https`` to a public address;
- loopback (``127.0.0.0/8``, ``::1``, ``localhost``), ``http`` included, only in sandbox mode or
  with ``[events] allow_http_loopback = true`` (local receivers, tests);
- any other non-public address (private, link-local, shared, reserved) only with ``[events]
  allow_private_networks = true``, and then over ``https`` still.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedUrl(Exception):
    """A webhook URL the gateway will not send to; the message says why and what allows it."""


@dataclass(frozen=True)
class Target:
    """A URL that passed: where to connect (``addresses``, each checked, in the resolver's
    order) and what to ask for (``url``)."""

    url: SplitResult
    host: str
    addresses: tuple[Address, ...]

    @property
    def port(self) -> int:
        return self.url.port or (443 if self.url.scheme == "https" else 80)


@dataclass(frozen=True)
class UrlPolicy:
    loopback: bool = False  # sandbox mode, or [events] allow_http_loopback
    private_networks: bool = False  # [events] allow_private_networks

    def form(self, url: str) -> SplitResult:
        """The checks that need no DNS: scheme, host, no credentials in the URL."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (a bad port raises here)
        except ValueError:
            raise RefusedUrl(f"not a URL: {url!r}") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise RefusedUrl("a webhook URL is https://host/path")
        if parts.username is not None or parts.password is not None:
            raise RefusedUrl("a webhook URL carries no credentials (the signature proves us)")
        literal = _literal(parts.hostname)
        if literal is not None:
            self._allowed(parts, [literal])
        elif parts.scheme == "http" and not (self.loopback and _is_localhost(parts.hostname)):
            raise RefusedUrl(_HTTP)
        return parts

    async def resolve(self, url: str) -> Target:
        """The whole rule: ``form`` and every address the host resolves to now."""
        parts = self.form(url)
        host = parts.hostname or ""
        addresses = await _addresses(host, parts.port)
        self._allowed(parts, addresses)
        return Target(parts, host, tuple(addresses))

    def _allowed(self, parts: SplitResult, addresses: list[Address]) -> None:
        if self.loopback and all(a.is_loopback for a in addresses):
            return
        if parts.scheme != "https":
            raise RefusedUrl(_HTTP)
        for address in addresses:
            if not _public(address) and not (self.private_networks and _usable(address)):
                raise RefusedUrl(
                    f"{parts.hostname} is at {address}, not a public address (allowed only "
                    "with [events] allow_private_networks = true)"
                )


_HTTP = (
    "a webhook URL must be https (plain http only to a loopback address, in sandbox mode or "
    "with [events] allow_http_loopback = true)"
)


def _literal(host: str) -> Address | None:
    try:
        return _unmapped(ipaddress.ip_address(host))
    except ValueError:
        return None


def _unmapped(address: Address) -> Address:
    """``::ffff:10.0.0.1`` is 10.0.0.1: judged as the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_localhost(host: str) -> bool:
    return host.lower() in ("localhost", "localhost.")


def _public(address: Address) -> bool:
    return address.is_global and _usable(address)


def _usable(address: Address) -> bool:
    return not (address.is_multicast or address.is_unspecified)


async def _addresses(host: str, port: int | None) -> list[Address]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            host, port or 443, type=socket.SOCK_STREAM
        )
    except OSError:
        raise RefusedUrl(f"{host} does not resolve") from None
    addresses = [_unmapped(ipaddress.ip_address(info[4][0])) for info in found]
    if not addresses:
        raise RefusedUrl(f"{host} does not resolve")
    return list(dict.fromkeys(addresses))
