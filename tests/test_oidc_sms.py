"""A person who logs in by SMS on the hosted page, seen by the sites of the OpenID Connect
provider: the id_token's ``amr`` is ``["sms"]``; userinfo's ``phone_number`` (E.164) and
``phone_number_verified`` reach a client registered with the ``phone`` scope that asked for
it, and no other client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.harness import Harness
from tests.support.oidc import (
    browser_of,
    code_for,
    exchange,
    id_token_claims,
    register,
)
from tests.support.sms import last_code, sms_gateway  # noqa: F401  (the fixture gw)
from tests.support.web import E164, PHONE, send_code, sms_log_in


@pytest.fixture
async def browser(gw: Harness) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_of(gw) as client:
        client.headers["accept-language"] = "en"
        yield client


async def _sms_login(gw: Harness, browser: httpx.AsyncClient) -> None:
    assert (await send_code(browser)).status_code == 200
    answer = await sms_log_in(browser, await last_code(gw.client, PHONE))
    assert answer.status_code == 303, answer.text


async def _claims(
    gw: Harness,
    browser: httpx.AsyncClient,
    rp: httpx.AsyncClient,
    scopes: tuple[str, ...],
    asked: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The id_token's claims and userinfo for a new client of ``scopes`` asking ``asked``."""
    site, secret = await register(gw, "Site " + "-".join(scopes), scopes=scopes)
    code, _ = await code_for(browser, site, scope=asked)
    answer = await exchange(rp, site, secret, code)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    _, claims = await id_token_claims(rp, tokens["id_token"])
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    info = await rp.get("/oauth/userinfo", headers=bearer)
    assert info.status_code == 200, info.text
    found: dict[str, Any] = info.json()
    return claims, found


async def test_a_site_gets_a_code_after_an_sms_login_with_amr_sms(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    await _sms_login(gw, browser)
    claims, info = await _claims(gw, browser, rp, ("openid", "profile", "phone"), "openid")
    assert claims["amr"] == ["sms"]
    assert info["sub"] == claims["sub"]
    assert "phone_number" not in info  # not asked for


async def test_the_phone_claims_reach_a_client_with_the_phone_scope_only(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    await _sms_login(gw, browser)
    _, info = await _claims(gw, browser, rp, ("openid", "phone"), "openid phone")
    assert info["phone_number"] == E164
    assert info["phone_number_verified"] is True
    _, other = await _claims(gw, browser, rp, ("openid", "profile"), "openid phone")
    assert "phone_number" not in other
    assert "phone_number_verified" not in other
    assert set(other) == {"sub"}
