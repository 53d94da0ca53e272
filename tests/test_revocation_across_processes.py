"""What one process writes, the other's token cache hears, within the documented bound.

Each process answers token checks from an in-process cache (README, "The token cache"). For
every write path that ends a session or changes an account's state, two `gateway serve` on one
PostgreSQL show it: the token is first cached by process 2 (a ``viewer`` through it, answered
from its cache), the write goes through process 1 (or an operator's command, a third process),
and process 2 is polled until it refuses the token (401, INVALID_TOKEN), or shows the new
account view (a merge: the survivor; a profile change: the new nickname), which must happen
within ``BOUND``. No sleeping for timing: a deadline. Each write path's broadcast was removed
once by hand to see its test fail here.

Once with Redis pub/sub as the channel, once with PostgreSQL's LISTEN/NOTIFY (no Redis): the
two channels of a deployment of several processes. (SQLite's documented topology is one server
process, whose operator commands signal it through a file: ``test_token_cache``.)
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col

from gateway.store import broadcast
from gateway.store.db import create_engine
from gateway.store.models import RefreshToken
from tests.support import processes
from tests.support.accounts import AUTHORIZATION_URL, LOGIN_WITH_STATE, REDIRECT, account_uuid
from tests.support.harness import PG_URL, REDIS_URL, skip_or_fail
from tests.support.passwords import CHANGE_PASSWORD, GOOD_PASSWORD, PASSWORD_LOGIN, REGISTER
from tests.support.processes import (
    Cluster,
    cached_on,
    refused_within,
    viewer_becomes,
)

# README, "The token cache": a change drops the entry on every replica when it commits; "a
# listener whose connection dies silently can serve an entry up to ~1.5 s (the heartbeat) after
# a change". A healthy listener must do at least as well. (The 5-second max age is only the
# safety net for a lost Redis publish, and would hide a write path that broadcasts nothing.)
BOUND = 1.5
README = Path(__file__).parent.parent / "README.md"

LOGOUT = "mutation($everywhere: Boolean!) { logout(everywhere: $everywhere) { __typename } }"
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) {
  __typename ... on RefreshSuccess { accessToken } ... on Error { code } } }"""
DELETE_ACCOUNT = """mutation { deleteAccount(input: {client: {platform: "ios"}}) { __typename
  ... on Error { code } } }"""
SESSIONS = "{ viewer { sessions { id current } } }"
REVOKE_SESSION = """mutation($id: ID!) { revokeSession(id: $id) { __typename
  ... on RevokeSessionSuccess { revoked } ... on Error { code } } }"""


def test_the_bound_is_the_documented_one() -> None:
    assert "up to ~1.5 s (the heartbeat)" in README.read_text(encoding="utf-8")
    assert broadcast.STALE_SECONDS == BOUND


def _clear_redis(url: str) -> None:
    from redis import Redis

    with Redis.from_url(url) as client:
        for key in client.scan_iter(match="gw:*"):
            client.delete(key)


@pytest.fixture(scope="module", params=["redis", "notify"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Started once per channel for the whole module."""
    if not PG_URL:
        skip_or_fail("PostgreSQL")
    assert PG_URL
    redis_url = None
    if request.param == "redis":
        if not REDIS_URL:
            skip_or_fail("Redis")
        redis_url = REDIS_URL
        assert redis_url
        _clear_redis(redis_url)
    tmp = tmp_path_factory.mktemp(f"pair-{request.param}")
    erase_at_once = "\n[accounts]\ndeletion_grace_days = 0\n"  # the deletion test erases
    with (
        processes.own_database(PG_URL) as url,
        processes.cluster(url, redis_url, tmp, erase_at_once) as started,
    ):
        yield started
    if redis_url:
        _clear_redis(redis_url)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


async def test_logout(pair: Cluster, client: httpx.AsyncClient) -> None:
    login = await pair.login(client, 0, "logout")
    await cached_on(client, pair.gateways[1], login["accessToken"])
    out = await pair.gql(client, 0, LOGOUT, {"everywhere": False}, login["accessToken"])
    assert out["data"]["logout"]["__typename"] == "LogoutSuccess", out
    await refused_within(client, pair.gateways[1], login["accessToken"], BOUND)


async def test_logout_everywhere(pair: Cluster, client: httpx.AsyncClient) -> None:
    phone = await pair.login(client, 0, "everywhere")
    tablet = await pair.login(client, 0, "everywhere")
    assert phone["account"]["id"] == tablet["account"]["id"]
    await cached_on(client, pair.gateways[1], phone["accessToken"])
    out = await pair.gql(client, 0, LOGOUT, {"everywhere": True}, tablet["accessToken"])
    assert out["data"]["logout"]["__typename"] == "LogoutSuccess", out
    await refused_within(client, pair.gateways[1], phone["accessToken"], BOUND)


async def test_revoking_one_session(pair: Cluster, client: httpx.AsyncClient) -> None:
    phone = await pair.login(client, 0, "revoker")
    tablet = await pair.login(client, 0, "revoker")
    await cached_on(client, pair.gateways[1], phone["accessToken"])
    listed = await pair.gql(client, 0, SESSIONS, token=tablet["accessToken"])
    (other,) = [s["id"] for s in listed["data"]["viewer"]["sessions"] if not s["current"]]
    out = await pair.gql(client, 0, REVOKE_SESSION, {"id": other}, tablet["accessToken"])
    assert out["data"]["revokeSession"]["revoked"] is True, out
    await refused_within(client, pair.gateways[1], phone["accessToken"], BOUND)


async def _age_spent_refresh_tokens(cluster: Cluster, seconds: int) -> None:
    """Move the spending of every used refresh token ``seconds`` into the past."""
    engine = create_engine(cluster.env["GATEWAY_DATABASE_URL"])
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(RefreshToken)
                .where(col(RefreshToken.used_at).is_not(None))
                .values(used_at=datetime.now(UTC) - timedelta(seconds=seconds))
            )
    finally:
        await engine.dispose()


async def test_a_refresh_token_reused_after_the_grace_window(
    pair: Cluster, client: httpx.AsyncClient
) -> None:
    login = await pair.login(client, 0, "reuser")
    rotated = await pair.gql(client, 0, REFRESH, {"t": login["refreshToken"]})
    token = rotated["data"]["refreshToken"]["accessToken"]
    await cached_on(client, pair.gateways[1], token)
    await _age_spent_refresh_tokens(pair, seconds=31)  # the window (30 s) has passed
    reused = await pair.gql(client, 0, REFRESH, {"t": login["refreshToken"]})
    assert reused["data"]["refreshToken"]["code"] == "REFRESH_TOKEN_REUSED", reused
    await refused_within(client, pair.gateways[1], token, BOUND)


async def test_an_operator_disabling_the_account(pair: Cluster, client: httpx.AsyncClient) -> None:
    """`gateway accounts disable` is a third process: both servers hear it."""
    login = await pair.login(client, 0, "disabled")
    for gateway in pair.gateways:
        await cached_on(client, gateway, login["accessToken"])
    account = str(account_uuid(login["account"]["id"]))
    command = [sys.executable, "-m", "gateway", "accounts", "disable", account, "--reason", "t"]
    await asyncio.to_thread(subprocess.run, command, env=pair.env, check=True, capture_output=True)
    for gateway in pair.gateways:
        await refused_within(client, gateway, login["accessToken"], BOUND)


async def test_deleting_the_account(pair: Cluster, client: httpx.AsyncClient) -> None:
    """Just logged in: no re-authentication needed (``reauthentication_seconds``)."""
    login = await pair.login(client, 0, "leaver")
    await cached_on(client, pair.gateways[1], login["accessToken"])
    deleted = await pair.gql(client, 0, DELETE_ACCOUNT, token=login["accessToken"])
    assert deleted["data"]["deleteAccount"]["__typename"] == "DeleteAccountSuccess", deleted
    await refused_within(client, pair.gateways[1], login["accessToken"], BOUND)
    again = await pair.login(client, 1, "leaver")
    assert again["isNewAccount"] is True
    assert again["account"]["id"] != login["account"]["id"]


async def _oa_login(
    cluster: Cluster, client: httpx.AsyncClient, user: str, scope: str
) -> dict[str, Any]:
    """``user`` through the official account, by gateway 0: the LoginSuccess."""
    variables = {"app": "news-oa", "redirect": REDIRECT, "scope": "snsapi_userinfo"}
    url = await cluster.gql(client, 0, AUTHORIZATION_URL, variables)
    state = url["data"]["authorizationUrl"]["state"]
    code = await cluster.mint(client, "wxtestnews000003", user, scope=scope)
    variables = {"app": "news-oa", "code": code, "state": state}
    login: dict[str, Any] = (await cluster.gql(client, 0, LOGIN_WITH_STATE, variables))["data"][
        "loginByCode"
    ]
    assert login["__typename"] == "LoginSuccess", login
    return login


async def test_a_merge(pair: Cluster, client: httpx.AsyncClient) -> None:
    """A unionid proves two accounts one person: the newer's token now acts for the older
    (README, "One account per person"), on the other process too."""
    older = (await _oa_login(pair, client, "merged", "snsapi_base"))["account"]["id"]
    newer = await pair.login(client, 0, "merged")  # the mini-program: openid and unionid
    assert newer["account"]["id"] != older
    await cached_on(client, pair.gateways[1], newer["accessToken"])
    merged = await _oa_login(pair, client, "merged", "snsapi_userinfo")  # openid + unionid
    assert merged["account"]["id"] == older
    await viewer_becomes(client, pair.gateways[1], newer["accessToken"], BOUND, id=older)


async def test_a_profile_change(pair: Cluster, client: httpx.AsyncClient) -> None:
    """An account's view changes without ending anything: the other process shows it."""
    first = await _oa_login(pair, client, "renamed", "snsapi_base")  # no profile yet
    token = first["accessToken"]
    await cached_on(client, pair.gateways[1], token)
    before = await pair.gql(client, 1, "{ viewer { nickname } }", token=token)
    assert before["data"]["viewer"]["nickname"] is None
    await _oa_login(pair, client, "renamed", "snsapi_userinfo")  # the profile is stored
    await viewer_becomes(client, pair.gateways[1], token, BOUND, nickname="renamed")


async def test_changing_the_password(pair: Cluster, client: httpx.AsyncClient) -> None:
    """Every other session of the account is logged out; this one stays."""
    variables = {
        "username": "changer",
        "password": GOOD_PASSWORD,
        "app": "shop-mp",
        "client": {"platform": "ios"},
    }
    phone = (await pair.gql(client, 0, REGISTER, variables))["data"]["registerWithPassword"]
    tablet = (await pair.gql(client, 0, PASSWORD_LOGIN, variables))["data"]["loginWithPassword"]
    await cached_on(client, pair.gateways[1], phone["accessToken"])
    await cached_on(client, pair.gateways[1], tablet["accessToken"])
    change = {"current": GOOD_PASSWORD, "new": "indigo-Harvest-42"}
    changed = await pair.gql(client, 0, CHANGE_PASSWORD, change, tablet["accessToken"])
    assert changed["data"]["changePassword"]["revokedSessions"] == 1, changed
    await refused_within(client, pair.gateways[1], phone["accessToken"], BOUND)
    kept = await pair.gql(client, 1, processes.VIEWER, token=tablet["accessToken"])
    assert kept["data"]["viewer"]["id"] == tablet["account"]["id"]
