"""The browser's login session (gateway.web.browser, gateway.sessions.browser): a login session
of its own kind, so logout everywhere, a disable and a merge reach it by the paths that reach
tokens. Driven through a small app of test routes on the real gateway's ``BrowserSessions``
(the hosted login page's tests, which open it by a password, are in test_web_login_page.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.errors import AccountDisabled
from gateway.rights.service import Operator
from gateway.web.browser import COOKIE, BrowserSessions, browser_client
from tests.support.accounts import account_uuid
from tests.support.accounts import wechat_login as login
from tests.support.harness import Harness
from tests.support.passwords import registered
from tests.support.sessions import logout, refresh


def _app(browser: BrowserSessions) -> Starlette:
    async def start(request: Request) -> Response:
        response = JSONResponse({})
        account_id = uuid.UUID(request.query_params["account"])
        await browser.start(response, account_id, ["pwd"], browser_client(request))
        return response

    async def current(request: Request) -> Response:
        login = await browser.current(request)
        if login is None:
            return JSONResponse(None)
        return JSONResponse({"account": str(login.account_id), "amr": list(login.amr)})

    async def end(request: Request) -> Response:
        response = JSONResponse({})
        await browser.end(request, response)
        return response

    return Starlette(
        routes=[Route("/start", start), Route("/current", current), Route("/end", end)]
    )


@pytest.fixture
async def browser(gw: Harness) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(gw.app.state.web.browser))
    async with httpx.AsyncClient(base_url="https://gw.test", transport=transport) as client:
        yield client


async def _logged_in(gw: Harness, browser: httpx.AsyncClient, name: str) -> dict[str, Any]:
    account = await registered(gw, name)
    started = await browser.get(
        "/start", params={"account": str(account_uuid(account["account"]["id"]))}
    )
    assert started.status_code == 200
    return account


async def test_a_browser_session_is_a_cookie_of_its_own_attributes(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    account = await registered(gw, "cookie-owner")
    account_id = account_uuid(account["account"]["id"])
    started = await browser.get("/start", params={"account": str(account_id)})
    header = started.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert attributes == {"httponly", "max-age", "path", "samesite", "secure"}
    assert "Max-Age=604800" in header
    assert "SameSite=lax" in header
    assert (await browser.get("/current")).json() == {"account": str(account_id), "amr": ["pwd"]}
    cookie = browser.cookies[COOKIE]
    # the cookie is no refresh token, and an edited amr names no session
    assert (await refresh(gw, cookie))["code"] == "INVALID_REFRESH_TOKEN"
    browser.cookies.set(COOKIE, cookie.replace(".pwd", ".wechat_qr"), domain="gw.test")
    assert (await browser.get("/current")).json() is None


async def test_logging_out_ends_the_browser_session(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    await _logged_in(gw, browser, "leaver")
    kept = browser.cookies[COOKIE]
    ended = await browser.get("/end")
    assert f'{COOKIE}=""' in ended.headers["set-cookie"]
    browser.cookies.set(COOKIE, kept, domain="gw.test")  # a copy of the cookie is dead too
    assert (await browser.get("/current")).json() is None


async def test_logout_everywhere_ends_the_browser_session(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    account = await _logged_in(gw, browser, "everywhere")
    assert (await browser.get("/current")).json() is not None
    result = await logout(gw, account["accessToken"], everywhere=True)
    assert result["revokedSessions"] == 2  # the API's session and the browser's
    assert (await browser.get("/current")).json() is None


async def test_a_disabled_account_has_no_browser_session(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    account = await _logged_in(gw, browser, "to-disable")
    account_id = account_uuid(account["account"]["id"])
    await gw.app.state.api.rights.set_disabled(account_id, True, Operator("ops", "test"))
    assert (await browser.get("/current")).json() is None
    await gw.app.state.api.rights.set_disabled(account_id, False, Operator("ops", "test"))
    assert (await browser.get("/current")).json() is None  # revoked, not only hidden
    again = await browser.get("/start", params={"account": str(account_id)})  # enabled again
    assert again.status_code == 200
    await gw.app.state.api.rights.set_disabled(account_id, True, Operator("ops", "test"))
    with pytest.raises(AccountDisabled):  # a disabled account gets no new one
        await browser.get("/start", params={"account": str(account_id)})


async def test_a_merged_accounts_browser_session_acts_for_the_survivor(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    older = await login(gw, "news-oa", "wx-merged", "snsapi_base")
    newer = await login(gw, "shop-mp", "wx-merged")
    newer_id = account_uuid(newer["account"]["id"])
    await browser.get("/start", params={"account": str(newer_id)})
    assert (await browser.get("/current")).json()["account"] == str(newer_id)
    merging = await login(gw, "news-oa", "wx-merged", "snsapi_userinfo")  # one person: merged
    assert merging["__typename"] == "LoginSuccess", merging
    survivor = str(account_uuid(older["account"]["id"]))
    assert (await browser.get("/current")).json() == {"account": survivor, "amr": ["pwd"]}
