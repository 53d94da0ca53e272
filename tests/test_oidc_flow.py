"""The OpenID Connect provider in process: the code flow with PKCE, the id_token, userinfo,
refresh, revocation, consent, prompts, pairwise subjects, and every refusal that must be an
error page rather than a redirect. The browser's login is opened by the real
``BrowserSessions``; the live relying party (authlib's client against ``gateway serve``,
logging in on the hosted page) is in test_oidc_live.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.harness import Harness
from tests.support.oidc import (
    ORIGIN,
    browser_of,
    code_for,
    exchange,
    id_token_claims,
    log_in,
    pkce,
    redirected,
    register,
    relying_party,
)
from tests.support.passwords import registered
from tests.test_linking import raw_id


@pytest.fixture
async def browser(gw: Harness) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_of(gw) as client:
        yield client


@pytest.fixture
async def rp(gw: Harness) -> AsyncIterator[httpx.AsyncClient]:
    async with relying_party(gw) as client:
        yield client


async def _person(gw: Harness, browser: httpx.AsyncClient, name: str) -> uuid.UUID:
    account = await registered(gw, name)
    account_id = raw_id(account["account"]["id"])
    await log_in(browser, account_id)
    return account_id


async def test_code_flow_with_pkce_gives_a_signed_id_token_userinfo_refresh_and_revocation(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    account_id = await _person(gw, browser, "oidc-alice")
    client, secret = await register(gw)
    verifier, challenge = pkce()
    code, asked = await code_for(browser, client, challenge)
    answer = await exchange(rp, client, secret, code, verifier)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"]
    header, claims = await id_token_claims(rp, tokens["id_token"])
    assert header["alg"] == "ES256" and header["kid"]
    assert claims["iss"] == ORIGIN and claims["aud"] == client.client_id
    assert claims["sub"] == str(account_id)  # first-party: the account's own id
    assert claims["nonce"] == asked["nonce"] and claims["amr"] == ["pwd"]
    assert claims["exp"] > claims["iat"] >= claims["auth_time"]
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    info = (await rp.get("/oauth/userinfo", headers=bearer)).json()
    assert info["sub"] == claims["sub"]
    renewed = await rp.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(client.client_id, secret or ""),
    )
    assert renewed.status_code == 200, renewed.text
    fresh = renewed.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    revoked = await rp.post(
        "/oauth/revoke",
        data={"token": fresh["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(client.client_id, secret or ""),
    )
    assert revoked.status_code == 200
    after = await rp.get(
        "/oauth/userinfo", headers={"authorization": f"Bearer {fresh['access_token']}"}
    )
    assert after.status_code == 401


async def test_discovery_names_the_origin_as_issuer(rp: httpx.AsyncClient) -> None:
    body = (await rp.get("/.well-known/openid-configuration")).json()
    assert body["issuer"] == ORIGIN
    assert body["jwks_uri"] == f"{ORIGIN}/.well-known/jwks.json"
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["id_token_signing_alg_values_supported"] == ["ES256"]
