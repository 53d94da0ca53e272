"""The hosted pages (``gateway.web``) as a browser sees them: an httpx client on the gateway's
origin (https, so its Secure cookies go back to it), the CSRF field of a page's form, and the
two forms of the login page's SMS tab."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from gateway.web.pages import CSRF_FIELD
from tests.support.harness import Harness

BASE = "https://gw.test"
ENGLISH = {"accept-language": "en"}
PHONE = "13900139000"
E164 = "+8613900139000"  # PHONE as the gateway stores and tells it
_CSRF = f'name="{CSRF_FIELD}" value="([0-9a-f]+)"'


def csrf_token(body: str) -> str:
    """The CSRF token of the page's form."""
    match = re.search(_CSRF, body)
    assert match, body
    return match.group(1)


@asynccontextmanager
async def page_browser(
    app: Any, base: str = BASE, *, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser of ``app``'s pages, with a cookie jar of its own."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(base_url=base, transport=transport, headers=headers) as client:
        yield client


@pytest.fixture(name="browser")
async def gateway_browser(gw: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """A module's ``browser`` when it imports this: a browser of its ``gw``'s pages."""
    async with page_browser(gw.app) as client:
        yield client


async def send_code(
    browser: httpx.AsyncClient, phone: str = PHONE, next_: str = "/account", **headers: str
) -> httpx.Response:
    """The SMS tab's first form: a code to ``phone``."""
    page = await browser.get("/login", params={"method": "sms", "next": next_, "prompt": "login"})
    form = {CSRF_FIELD: csrf_token(page.text), "phone": phone, "next": next_}
    return await browser.post("/login/sms/code", data=form, headers={"origin": BASE, **headers})


async def sms_log_in(
    browser: httpx.AsyncClient, code: str, phone: str = PHONE, next_: str = "/account"
) -> httpx.Response:
    """The SMS tab's second form: the code back."""
    page = await browser.get("/login", params={"method": "sms", "prompt": "login"})
    form = {CSRF_FIELD: csrf_token(page.text), "phone": phone, "code": code, "next": next_}
    return await browser.post("/login/sms", data=form, headers={"origin": BASE})
