"""A real relying party against a real `gateway serve` (sandbox mode, its own SQLite file):
authlib's async OAuth client runs the authorization code flow with PKCE, the person logs in
on the hosted ``/login`` form (its CSRF token from the page), the id_token is checked against
the published JWKS with joserfc, then userinfo, refresh and revocation. Clients are
registered with the `gateway clients` CLI, and a client disabled there is refused by the
running server within 5 seconds."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.browser import serve
from tests.support.passwords import CLIENT, GOOD_PASSWORD, REGISTER

SITE = "http://127.0.0.1:9/callback"  # the site's callback: never fetched, only parsed


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oidc-gateway")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return {**env, "GATEWAY_LOG_LEVEL": "WARNING"}


@pytest.fixture(scope="module")
def gateway(home: Path) -> Iterator[str]:
    """`gateway serve` in sandbox mode (no Secure cookies over plain http), until ready."""
    yield from serve(home, {})


def clients_cli(home: Path, *args: str) -> dict[str, Any]:
    """``gateway clients ...`` on the server's database; its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "clients", *args],
        env=_env(),
        cwd=home,
        capture_output=True,
        text=True,
        check=True,
    )
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


def clients_list(home: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "clients", "list"],
        env=_env(), cwd=home, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


async def _person(gateway: str, username: str) -> None:
    variables = {
        "username": username,
        "password": GOOD_PASSWORD,
        "app": "shop-mp",
        "client": CLIENT,
    }
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{gateway}/graphql", json={"query": REGISTER, "variables": variables}
        )
    assert answer.json()["data"]["registerWithPassword"]["__typename"] == "LoginSuccess"


async def _log_in_and_authorize(browser: httpx.AsyncClient, url: str, username: str) -> str:
    """The browser follows the authorization URL to the hosted login page, posts the form
    with the page's CSRF token, and comes back: the redirect to the site, with the code."""
    to_login = await browser.get(url)
    assert to_login.status_code == 302, to_login.text
    page = await browser.get(to_login.headers["location"])
    assert page.status_code == 200
    fields = {
        name: unescape(value)
        for name, value in re.findall(r'name="(csrf_token|next)" value="([^"]*)"', page.text)
    }
    posted = await browser.post(
        "/login",
        data={**fields, "username": username, "password": GOOD_PASSWORD},
        headers={"origin": str(browser.base_url).rstrip("/")},
    )
    assert posted.status_code == 303, posted.text
    back = await browser.get(posted.headers["location"])
    assert back.status_code == 302, back.text
    location: str = back.headers["location"]
    assert location.startswith(SITE)
    return location


async def test_authlib_runs_the_code_flow_with_pkce_against_a_live_gateway(
    gateway: str, home: Path
) -> None:
    added = clients_cli(
        home, "add", "Live shop", "--redirect-uri", SITE, "--first-party",
        "--scopes", "openid,profile,phone",
    )  # fmt: skip
    await _person(gateway, "live-alice")
    async with httpx.AsyncClient() as http:
        discovery = (await http.get(f"{gateway}/.well-known/openid-configuration")).json()
        keys = KeySet.import_key_set((await http.get(discovery["jwks_uri"])).json())
    assert discovery["issuer"] == gateway
    rp = AsyncOAuth2Client(
        added["client_id"],
        added["client_secret"],
        scope="openid profile",
        redirect_uri=SITE,
        code_challenge_method="S256",
    )
    verifier, nonce = generate_token(48), generate_token(16)
    url, state = rp.create_authorization_url(
        discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    async with rp, httpx.AsyncClient(base_url=gateway) as browser:
        back = await _log_in_and_authorize(browser, url, "live-alice")
        token = await rp.fetch_token(
            discovery["token_endpoint"], authorization_response=back, code_verifier=verifier,
            state=state,
        )  # fmt: skip
        claims = jwt.decode(token["id_token"], keys, algorithms=["ES256"]).claims
        assert claims["iss"] == gateway
        assert claims["aud"] == added["client_id"]
        assert claims["nonce"] == nonce
        assert claims["amr"] == ["pwd"]
        info = (await rp.get(discovery["userinfo_endpoint"])).json()
        assert info["sub"] == claims["sub"]
        renewed = await rp.refresh_token(discovery["token_endpoint"])
        assert renewed["refresh_token"] != token["refresh_token"]
        revoked = await rp.revoke_token(
            discovery["revocation_endpoint"], token=renewed["refresh_token"],
            token_type_hint="refresh_token",
        )  # fmt: skip
        assert revoked.status_code == 200
        after = await rp.get(discovery["userinfo_endpoint"])
        assert after.status_code == 401


async def test_a_client_disabled_with_the_cli_is_refused_by_the_running_server_within_5s(
    gateway: str, home: Path
) -> None:
    added = clients_cli(home, "add", "Soon gone", "--redirect-uri", SITE, "--public")
    assert "client_secret" not in added
    params = {
        "response_type": "code", "client_id": added["client_id"], "redirect_uri": SITE,
        "scope": "openid", "code_challenge": "x" * 43, "code_challenge_method": "S256",
    }  # fmt: skip
    async with httpx.AsyncClient(base_url=gateway) as browser:
        before = await browser.get("/oauth/authorize", params=params)
        assert before.status_code == 302  # to the login page: the client is known
        assert clients_cli(home, "disable", added["client_id"])["disabled"] is True
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            answer = await browser.get("/oauth/authorize", params=params)
            took = loop.time() - start
            if answer.status_code == 400:
                assert "location" not in answer.headers
                break
            assert answer.status_code == 302
            assert took <= 5, f"still served {took:.1f} s after the CLI disabled it"
            await asyncio.sleep(0.05)  # a pause between polls, not a timing assumption
    shown = clients_cli(home, "show", added["client_id"])
    assert shown["disabled"] is True
    listed = clients_list(home)
    assert added["client_id"] in listed
    assert "secret" not in listed


async def test_rotate_secret_reaches_the_running_server(gateway: str, home: Path) -> None:
    added = clients_cli(home, "add", "Rotating", "--redirect-uri", SITE)
    rotated = clients_cli(home, "rotate-secret", added["client_id"])
    assert rotated["client_secret"] != added["client_secret"]
    form = {"grant_type": "authorization_code", "code": "nothing", "redirect_uri": SITE}
    async with httpx.AsyncClient(base_url=gateway) as http:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            old = await http.post(
                "/oauth/token", data=form, auth=(added["client_id"], added["client_secret"])
            )
            if old.status_code == 401:
                break
            assert old.json()["error"] == "invalid_grant"  # the old secret still accepted
            assert loop.time() - start <= 5
            await asyncio.sleep(0.05)  # a pause between polls, not a timing assumption
        new = await http.post(
            "/oauth/token", data=form, auth=(added["client_id"], rotated["client_secret"])
        )
        assert new.json()["error"] == "invalid_grant"  # authenticated; the code is unknown
