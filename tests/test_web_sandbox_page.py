"""The hosted login page in sandbox mode, over HTTP: the scan tab's collection (POST
/login/scan) and the website QR login through the emulator's authorisation page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.web.browser import COOKIE
from gateway.web.pages import CSRF_FIELD
from tests.support.web import csrf_token, page_browser
from tests.support.weblogin import Site, site_gateway  # noqa: F401  (the fixture gw)

BASE = "http://gateway"  # what a sandbox gateway (no apps of its own) is reached on


@pytest.fixture
async def browser(gw: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with page_browser(gw.app, BASE) as client:
        yield client


async def test_an_approved_scan_becomes_this_browsers_session_once(
    gw: Site, browser: httpx.AsyncClient
) -> None:
    page = await browser.get("/login", params={"next": "/shop"})
    assert 'data-app="shop-mp"' in page.text
    started = await gw.start(browser)
    assert (await gw.scan(started["scene"], "scanner")).status_code == 200
    form = {CSRF_FIELD: csrf_token(page.text), "ticket": started["ticket"], "next": "/shop"}
    collected = await browser.post("/login/scan", data=form, headers={"origin": BASE})
    assert collected.status_code == 303
    assert collected.headers["location"] == "/shop"
    assert browser.cookies[COOKIE].endswith(".wechat_miniprogram_scan")
    again = await browser.post("/login/scan", data=form)
    assert again.status_code == 410  # single use


async def test_another_browser_cannot_collect_a_scan(gw: Site, browser: httpx.AsyncClient) -> None:
    started = await gw.start(browser)
    await gw.scan(started["scene"], "victim")
    async with page_browser(gw.app, BASE) as thief:
        page = await thief.get("/login")
        form = {CSRF_FIELD: csrf_token(page.text), "ticket": started["ticket"]}
        stolen = await thief.post("/login/scan", data=form)
    assert stolen.status_code == 410
    assert COOKIE not in stolen.headers.get("set-cookie", "")
    page = await browser.get("/login")
    foreign = await browser.post(
        "/login/scan",
        data={CSRF_FIELD: csrf_token(page.text), "ticket": started["ticket"]},
        headers={"origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert COOKIE not in browser.cookies


async def test_the_website_qr_login_through_the_emulators_page(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/login", params={"next": "/orders"})
    (start,) = re.findall(r'href="(/login/wechat\?[^"]+)"', page.text)
    sent = await browser.get(start.replace("&amp;", "&"))
    assert sent.status_code == 303
    authorize = urlsplit(sent.headers["location"])
    assert authorize.path == "/sandbox/wechat-open/connect/qrconnect"
    shown = await browser.get(f"{authorize.path}?{authorize.query}")
    assert shown.status_code == 200
    fields = dict(re.findall(r'name="([a-z_]+)" value="([^"]*)"', shown.text))
    fields["user"] = "qr-user"
    back = await browser.post("/sandbox/wechat-open/authorize", data=fields)
    assert back.status_code == 303
    assert back.headers["location"].startswith(f"{BASE}/login/wechat/callback?app=web&code=")
    landed = await browser.get(back.headers["location"])
    assert landed.status_code == 303
    assert landed.headers["location"] == "/orders"
    assert browser.cookies[COOKIE].endswith(".wechat_qr")
    # the emulator sends codes to this gateway only
    fields["redirect_uri"] = "https://evil.example/cb"
    refused = await browser.post("/sandbox/wechat-open/authorize", data=fields)
    assert refused.status_code == 400
    assert "location" not in refused.headers
