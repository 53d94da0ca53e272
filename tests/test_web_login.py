"""Scan to log in with the mini-program (issue 25, item 4), through GraphQL over HTTP on
SQLite and PostgreSQL: the browser that started a login, and only it, collects it, once."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select
from sqlmodel import col

from gateway.errors import WebLoginExpired, WebLoginNotBound, WebLoginPending
from gateway.store.db import create_engine
from gateway.store.models import AuditEvent
from gateway.weblogin.service import AMR, BINDING_COOKIE, POLL_SECONDS
from tests.support.weblogin import (  # noqa: F401  (the fixture gw)
    APPROVE,
    ORIGIN,
    REQUEST,
    Site,
    site,
    site_gateway,
)


async def test_start_scan_approve_and_the_browser_collects_once(gw: Site) -> None:
    browser = gw.browser()
    started = await gw.start(browser)
    assert started["qrImage"].startswith("data:image/png;base64,")
    png = Image.open(io.BytesIO(base64.b64decode(started["qrImage"].split(",", 1)[1])))
    assert png.format == "PNG"
    assert png.info["scene"] == started["scene"]
    assert len(started["scene"]) <= 32
    assert (await gw.status(browser, started["ticket"]))["status"] == "WAITING"

    token = await gw.phone_login("shop-mp", "alice")
    phone = gw.browser()
    asked = await gw.gql(phone, REQUEST, {"scene": started["scene"]}, token=token)
    assert asked["status"] == "SCANNED"
    assert asked["origin"] == ORIGIN
    assert asked["userAgent"] == "TestBrowser/1.0"
    assert asked["app"]["key"] == "shop-mp"
    assert (await gw.status(browser, started["ticket"]))["status"] == "SCANNED"

    approved = await gw.gql(
        phone, APPROVE, {"scene": started["scene"], "approve": True}, token=token
    )
    assert approved["status"] == "APPROVED", approved
    collected = await gw.status(browser, started["ticket"])
    assert collected["status"] == "APPROVED"
    assert collected["login"] is not None
    viewer = await gw.gql(browser, "{ viewer { id } }", token=collected["login"]["accessToken"])
    assert viewer["id"] == collected["login"]["account"]["id"]
    again = await gw.status(browser, started["ticket"])
    assert (again["status"], again["login"]) == ("EXPIRED", None)


async def test_the_binding_cookie_is_http_only_and_lax(gw: Site) -> None:
    browser = gw.browser()
    answer = await browser.post(
        "/graphql",
        json={"query": 'mutation { startWebLogin(input: {app: "shop-mp"}) { __typename } }'},
    )
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith(BINDING_COOKIE + "=")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/" in cookie
    assert "secure" not in cookie  # sandbox mode: plain http


async def test_another_browser_sees_the_approval_but_never_the_login(gw: Site) -> None:
    mine, theirs = gw.browser(), gw.browser()
    started = await gw.start(mine)
    scanned = await gw.scan(started["scene"])
    assert scanned.status_code == 200
    assert scanned.json()["status"] == "APPROVED"

    stolen = await gw.status(theirs, started["ticket"])
    assert (stolen["status"], stolen["login"]) == ("APPROVED", None)
    theirs.cookies.set(BINDING_COOKIE, "x" * 43)  # a well-formed, wrong binding
    assert (await gw.status(theirs, started["ticket"]))["login"] is None
    with pytest.raises(WebLoginNotBound):
        await gw.web_logins.collect(started["ticket"], "x" * 43)

    assert (await gw.status(mine, started["ticket"]))["login"] is not None
    assert (await gw.status(theirs, started["ticket"]))["status"] == "EXPIRED"


async def test_collect_for_the_hosted_page_is_single_use(gw: Site) -> None:
    browser = gw.browser()
    started = await gw.start(browser)
    binding = browser.cookies[BINDING_COOKIE]
    with pytest.raises(WebLoginPending):
        await gw.web_logins.collect(started["ticket"], binding)
    await gw.scan(started["scene"], user="carol")
    collected = await gw.web_logins.collect(started["ticket"], binding)
    assert (collected.amr, collected.app_key) == (AMR, "shop-mp")
    with pytest.raises(WebLoginExpired):
        await gw.web_logins.collect(started["ticket"], binding)
    assert (await gw.status(browser, started["ticket"]))["status"] == "EXPIRED"


async def test_a_denied_login_stays_denied(gw: Site) -> None:
    browser = gw.browser()
    started = await gw.start(browser)
    denied = await gw.scan(started["scene"], approve=False)
    assert denied.json()["status"] == "DENIED"
    state = await gw.status(browser, started["ticket"])
    assert (state["status"], state["login"]) == ("DENIED", None)
    token = await gw.phone_login("shop-mp", "alice")
    late = await gw.gql(
        gw.browser(), APPROVE, {"scene": started["scene"], "approve": True}, token=token
    )
    assert late["code"] == "WEB_LOGIN_EXPIRED"


async def test_an_approval_counts_once(gw: Site) -> None:
    started = await gw.start(gw.browser())
    token = await gw.phone_login("shop-mp", "alice")
    phone = gw.browser()
    variables = {"scene": started["scene"], "approve": True}
    assert (await gw.gql(phone, APPROVE, variables, token=token))["status"] == "APPROVED"
    second = await gw.gql(phone, APPROVE, variables, token=token)
    assert second == {"__typename": "WebLoginError", "code": "WEB_LOGIN_EXPIRED"}


async def test_a_ticket_expires_on_the_sandbox_clock(gw: Site) -> None:
    browser = gw.browser()
    started = await gw.start(browser)
    await gw.advance(121)
    assert (await gw.status(browser, started["ticket"]))["status"] == "EXPIRED"
    late = await gw.scan(started["scene"])
    assert late.status_code == 409
    assert late.json()["error"] == "WEB_LOGIN_EXPIRED"
    unknown = await gw.status(browser, "n" * 43)
    assert (unknown["status"], unknown["expiresAt"]) == ("EXPIRED", None)


async def test_only_a_mini_program_starts_a_scan_login(gw: Site) -> None:
    browser = gw.browser()
    for app, code in (("news-oa", "UNSUPPORTED_APP_KIND"), ("nope", "UNKNOWN_APP")):
        refused = await gw.gql(browser, START_ANY, {"app": app})
        assert refused["code"] == code, refused
    assert BINDING_COOKIE not in browser.cookies


START_ANY = """mutation($app: String!) { startWebLogin(input: {app: $app}) { __typename
  ... on Error { code } } }"""


async def test_approving_needs_a_login_in_the_scanned_mini_program(gw: Site) -> None:
    browser = gw.browser()
    started = await gw.start(browser)
    phone = gw.browser()
    variables = {"scene": started["scene"], "approve": True}
    assert (await gw.gql(phone, APPROVE, variables))["code"] == "NOT_LOGGED_IN"
    assert (await gw.gql(phone, REQUEST, {"scene": started["scene"]}))["code"] == "NOT_LOGGED_IN"
    other = await gw.phone_login("club-mp", "alice")
    refused = await gw.gql(phone, APPROVE, variables, token=other)
    assert refused["code"] == "UNSUPPORTED_APP_KIND"
    looked = await gw.gql(phone, REQUEST, {"scene": started["scene"]}, token=other)
    assert looked["code"] == "UNSUPPORTED_APP_KIND"
    assert (await gw.status(browser, started["ticket"]))["status"] == "WAITING"
    token = await gw.phone_login("shop-mp", "alice")
    bad = await gw.gql(phone, APPROVE, {"scene": "no such!", "approve": True}, token=token)
    assert bad["code"] == "INVALID_INPUT"


async def test_a_scan_login_is_the_website_s_and_cannot_approve_another(gw: Site) -> None:
    """The session a scan opens belongs to the website (app ``@web``), not to the mini-program
    whose code was scanned: its token cannot confirm further scans as if it were the phone."""
    browser = gw.browser()
    started = await gw.start(browser)
    await gw.scan(started["scene"])
    login = (await gw.status(browser, started["ticket"]))["login"]
    token = login["accessToken"]
    check = await gw.gql(browser, "{ checkSession { valid app { key } } }", token=token)
    assert check == {"valid": True, "app": None}

    second = await gw.start(gw.browser())
    variables = {"scene": second["scene"], "approve": True}
    refused = await gw.gql(browser, APPROVE, variables, token=token)
    assert refused["code"] == "UNSUPPORTED_APP_KIND"
    looked = await gw.gql(browser, REQUEST, {"scene": second["scene"]}, token=token)
    assert looked["code"] == "UNSUPPORTED_APP_KIND"


async def test_a_long_poll_wakes_on_the_approval(gw: Site) -> None:
    browser = gw.browser()
    started = await gw.start(browser)
    waiting = asyncio.create_task(gw.status(browser, started["ticket"], wait=20))
    # yield to the loop (no timing) until the request is parked on its wake-up
    while gw.web_logins.wakeups.waiting == 0:  # noqa: ASYNC110
        await asyncio.sleep(0)
    await gw.scan(started["scene"])
    # well before the fallback poll would have read again: woken by the approval itself
    answered = await asyncio.wait_for(waiting, timeout=POLL_SECONDS - 1)
    assert answered["status"] == "APPROVED"
    assert answered["login"] is not None


async def test_a_long_poll_is_bounded(gw: Site) -> None:
    browser = gw.browser()
    started = await gw.start(browser)
    refused = await gw.status(browser, started["ticket"], wait=26)
    assert refused["code"] == "INVALID_INPUT"


async def test_approval_and_login_are_audited(gw: Site, database_url: str) -> None:
    browser = gw.browser()
    started = await gw.start(browser)
    await gw.scan(started["scene"])
    await gw.status(browser, started["ticket"])
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(col(AuditEvent.kind), col(AuditEvent.detail)))).all()
    finally:
        await engine.dispose()
    kinds: dict[str, Any] = dict(rows)
    assert kinds["web_login_approved"]["browser_origin"] == ORIGIN
    assert kinds["web_login_started"]["amr"] == AMR
    logins = [d for k, d in rows if k == "login" and d.get("door") == AMR]
    assert len(logins) == 1
    assert logins[0]["amr"] == AMR
    assert logins[0]["scanned_app"] == "shop-mp"


async def test_two_gateways_share_the_tickets(
    gw: Site, database_url: str, workdir: Path, backend: str
) -> None:
    """The browser polls one gateway, the phone confirms through another on the same
    database: the ticket, its answer and its wake-up cross over (NOTIFY on PostgreSQL: well
    before the fallback read; that read on SQLite)."""
    browser = gw.browser()
    started = await gw.start(browser)
    waiting = asyncio.create_task(gw.status(browser, started["ticket"], wait=20))
    async with site(database_url, workdir) as other:
        scanned = await other.scan(started["scene"], user="erin")
        assert scanned.status_code == 200, scanned.text
        bound = POLL_SECONDS - 1 if backend == "postgres" else POLL_SECONDS + 5
        answered = await asyncio.wait_for(waiting, timeout=bound)
    assert answered["status"] == "APPROVED"
    assert answered["login"] is not None
