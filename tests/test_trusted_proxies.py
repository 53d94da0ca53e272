"""Forwarded addresses are believed only from configured proxies (issue 12, item 4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from gateway.config import ConfigError, Settings, load_settings
from gateway.store.models import AuditEvent
from tests.support.harness import Configure, Harness, MakeConfig, running
from tests.support.passwords import CLIENT, PASSWORD_LOGIN, gql, registered

SESSIONS = "{ viewer { sessions { ip current } } }"
SPOOFED = "203.0.113.77"


@asynccontextmanager
async def peer(gw: Harness, ip: str, forwarded: str | None) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gw.app, client=(ip, 40000))
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    async with httpx.AsyncClient(
        base_url="http://gateway", transport=transport, headers=headers
    ) as http:
        yield http


async def login_ip(gw: Harness, http: httpx.AsyncClient, username: str) -> tuple[str | None, str]:
    """Log in through ``http``: the IP the session shows, and the one the audit row holds."""
    variables = {"username": username, "password": "violet-Tractor-88", "app": "shop-mp"}
    body = await gql(http, PASSWORD_LOGIN, {**variables, "client": CLIENT})
    token = body["data"]["loginWithPassword"]["accessToken"]
    sessions = (await gql(http, SESSIONS, {}, token))["data"]["viewer"]["sessions"]
    (current,) = [s["ip"] for s in sessions if s["current"]]
    async with gw.app.state.services.db.reader() as s:
        query = select(AuditEvent).where(col(AuditEvent.kind) == "login")
        events = list((await s.execute(query.order_by(col(AuditEvent.id)))).scalars())
    return current, str(events[-1].ip)


async def test_no_forwarding_header_is_trusted_by_default(gw: Harness) -> None:
    await registered(gw, "olga")
    async with peer(gw, "127.0.0.1", SPOOFED) as http:
        assert await login_ip(gw, http, "olga") == ("127.0.0.1", "127.0.0.1")


async def test_a_spoofed_header_does_not_escape_the_per_address_throttle(
    database_url: str, configure: Configure
) -> None:
    week = 7 * 86400  # the address's window: no boundary mid-test
    throttle = {"failure_factor": 3, "address_failure_factor": 3, "address_window_seconds": week}
    config = configure(database_url, throttle=throttle)
    async with running(config) as gw:
        codes = []
        for n in range(5):
            async with peer(gw, "127.0.0.1", f"198.51.100.{n}") as http:
                variables: dict[str, Any] = {
                    "username": f"user{n}", "password": "wrong-pass-1", "app": "shop-mp",
                    "client": CLIENT,
                }  # fmt: skip
                body = await gql(http, PASSWORD_LOGIN, variables)
                codes.append(body["data"]["loginWithPassword"]["code"])
        assert codes == ["INVALID_CREDENTIALS"] * 3 + ["THROTTLED"] * 2


@pytest.mark.parametrize(
    ("peer_ip", "forwarded", "seen"),
    [
        ("10.0.0.5", SPOOFED, SPOOFED),  # a named proxy
        ("10.0.0.5", f"192.0.2.1, {SPOOFED}, 10.0.0.9", SPOOFED),  # trusted hops skipped
        ("127.0.0.1", SPOOFED, "127.0.0.1"),  # loopback is not special
        ("198.51.100.5", SPOOFED, "198.51.100.5"),  # not a proxy: its header is ignored
        ("10.0.0.5", None, "10.0.0.5"),
    ],
)
async def test_forwarded_for_is_read_only_from_the_named_proxies(
    database_url: str, make_config: MakeConfig, peer_ip: str, forwarded: str | None, seen: str
) -> None:
    async with running(make_config(database_url, trusted_proxies="10.0.0.0/24")) as gw:
        await registered(gw, "pablo")
        async with peer(gw, peer_ip, forwarded) as http:
            assert await login_ip(gw, http, "pablo") == (seen, seen)


async def test_garbage_from_a_trusted_proxy_is_not_recorded(
    database_url: str, make_config: MakeConfig
) -> None:
    async with running(make_config(database_url, trusted_proxies="10.0.0.5")) as gw:
        await registered(gw, "rita")
        async with peer(gw, "10.0.0.5", "not-an-address-" + "x" * 80) as http:
            assert await login_ip(gw, http, "rita") == (None, "None")


def test_a_bad_proxy_entry_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8, not-a-network")
    with pytest.raises(ConfigError, match="GATEWAY_TRUSTED_PROXIES"):
        load_settings()
    assert Settings(trusted_proxies="10.0.0.1, 2001:db8::/32").trusted_proxies


def test_uvicorn_believes_no_proxy_header_itself(
    workdir: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from gateway.cli import main

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    main(["serve"])
    assert seen["proxy_headers"] is False
    # slow clients are dropped: a connection limit and a short keep-alive (issue 12, item 6)
    assert seen["limit_concurrency"] == 1000
    assert seen["timeout_keep_alive"] == 5
