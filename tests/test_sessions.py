"""Login sessions through the API: rotation, reuse detection, logout, token checks, audit."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import text, update
from sqlmodel import col

from gateway.store.db import create_engine
from gateway.store.models import RefreshToken
from tests.support.harness import Configure, Harness, running
from tests.support.sessions import LOGOUT, gateway_key, logout, refresh, segments

VIEWER = "{ viewer { id } }"
CLIENT = {"platform": "android", "channel": "huawei-store", "deviceParam": "model=P60;os=12"}
IP = "127.0.0.1"  # what httpx's ASGI transport reports as the client address


async def viewer_id(gw: Harness, token: str) -> str | None:
    return await gw.viewer_id(token)


@pytest.fixture
async def strict(database_url: str, configure: Configure) -> AsyncIterator[Harness]:
    """No grace for a just-rotated refresh token: any reuse revokes the session."""
    async with running(configure(database_url, tokens={"refresh_reuse_grace_seconds": 0})) as gw:
        yield gw


async def rows(gw: Harness, table: str) -> list[dict[str, Any]]:
    engine = create_engine(gw.config.database_url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(f"SELECT * FROM {table}"))
            return [dict(r._mapping) for r in result]
    finally:
        await engine.dispose()


# --- refresh ---------------------------------------------------------------------------------


async def test_refresh_rotates_and_each_refresh_token_works_once(gw: Harness) -> None:
    login = await gw.login("shop-mp", "alice")
    first = await refresh(gw, login["refreshToken"])
    assert first["__typename"] == "RefreshSuccess"
    assert first["refreshToken"] != login["refreshToken"]
    assert first["accessToken"] != login["accessToken"]
    assert first["account"]["id"] == login["account"]["id"]
    assert first["refreshExpiresAt"] == login["refreshExpiresAt"]  # the session's end holds
    assert await viewer_id(gw, first["accessToken"]) == login["account"]["id"]

    second = await refresh(gw, first["refreshToken"])
    assert second["__typename"] == "RefreshSuccess"
    assert len({login["refreshToken"], first["refreshToken"], second["refreshToken"]}) == 3
    assert await viewer_id(gw, second["accessToken"]) == login["account"]["id"]


async def test_reusing_a_spent_refresh_token_revokes_the_whole_session(strict: Harness) -> None:
    gw = strict
    login = await gw.login("shop-mp", "bob")
    other = await gw.login("club-mp", "bob")  # another session of the same account
    rotated = await refresh(gw, login["refreshToken"])
    assert rotated["__typename"] == "RefreshSuccess"

    reused = await refresh(gw, login["refreshToken"])
    assert (reused["__typename"], reused["code"]) == ("RefreshTokenError", "REFRESH_TOKEN_REUSED")
    assert reused["message"]

    # the thief's and the owner's newest tokens are both dead now
    after = await refresh(gw, rotated["refreshToken"])
    assert (after["__typename"], after["code"]) == ("RefreshTokenError", "INVALID_REFRESH_TOKEN")
    assert await viewer_id(gw, rotated["accessToken"]) is None
    assert await viewer_id(gw, login["accessToken"]) is None
    # the account's other session is untouched
    assert await viewer_id(gw, other["accessToken"]) == login["account"]["id"]
    assert (await refresh(gw, other["refreshToken"]))["__typename"] == "RefreshSuccess"


async def test_without_grace_concurrent_refreshes_of_one_token_succeed_at_most_once(
    strict: Harness,
) -> None:
    gw = strict
    login = await gw.login("shop-mp", "cora")
    results = await asyncio.gather(*(refresh(gw, login["refreshToken"]) for _ in range(4)))
    kinds = [r["__typename"] for r in results]
    assert kinds.count("RefreshSuccess") == 1, results
    losers = [r for r in results if r["__typename"] != "RefreshSuccess"]
    assert {r["__typename"] for r in losers} == {"RefreshTokenError"}
    # the first loser is caught reusing the token; later ones find the session revoked
    assert "REFRESH_TOKEN_REUSED" in {r["code"] for r in losers}
    assert {r["code"] for r in losers} <= {"REFRESH_TOKEN_REUSED", "INVALID_REFRESH_TOKEN"}


async def test_a_token_reused_within_the_grace_window_gets_the_same_successor(
    gw: Harness,
) -> None:
    """A client that lost the answer to a refresh retries with the same token: it is not
    logged out, and it gets the refresh token it lost (a new access token for the same
    session), so no second chain of tokens grows from one spent token."""
    login = await gw.login("shop-mp", "gwen")
    first = await refresh(gw, login["refreshToken"])
    retried = await refresh(gw, login["refreshToken"])
    assert (first["__typename"], retried["__typename"]) == ("RefreshSuccess", "RefreshSuccess")
    assert retried["refreshToken"] == first["refreshToken"]
    assert await viewer_id(gw, first["accessToken"]) == login["account"]["id"]
    assert await viewer_id(gw, retried["accessToken"]) == login["account"]["id"]
    after = await refresh(gw, retried["refreshToken"])
    assert after["__typename"] == "RefreshSuccess"
    # the lost answer's token is spent now, moments ago: it too answers its one successor
    assert (await refresh(gw, first["refreshToken"]))["refreshToken"] == after["refreshToken"]
    kinds = sorted(e["kind"] for e in await rows(gw, "audit_events"))
    assert kinds == ["refresh", "refresh", "refresh_grace", "refresh_grace", "register"]


async def test_ten_reuses_inside_the_grace_window_answer_one_successor(gw: Harness) -> None:
    login = await gw.login("shop-mp", "ida")
    first = await refresh(gw, login["refreshToken"])
    reuses = [await refresh(gw, login["refreshToken"]) for _ in range(10)]
    assert {r["refreshToken"] for r in reuses} == {first["refreshToken"]}
    for reuse in reuses:  # each an access token for the same session
        assert await viewer_id(gw, reuse["accessToken"]) == login["account"]["id"]
    tokens = await rows(gw, "refresh_tokens")
    assert len(tokens) == 2  # the login's, spent, and its one successor: one live chain
    assert sorted(t["used_at"] is None for t in tokens) == [False, True]
    assert len({t["session_id"] for t in tokens}) == 1
    sessions = await rows(gw, "login_sessions")
    assert [r["revoked_at"] for r in sessions] == [None]


async def test_concurrent_refreshes_of_one_token_all_succeed_within_the_grace_window(
    gw: Harness,
) -> None:
    login = await gw.login("shop-mp", "cora")
    results = await asyncio.gather(*(refresh(gw, login["refreshToken"]) for _ in range(8)))
    assert {r["__typename"] for r in results} == {"RefreshSuccess"}, results
    assert len({r["refreshToken"] for r in results}) == 1  # one successor, one chain
    for result in results:
        assert await viewer_id(gw, result["accessToken"]) == login["account"]["id"]
    assert len(await rows(gw, "refresh_tokens")) == 2


async def test_without_grace_a_reuse_of_the_successors_parent_is_still_theft(
    strict: Harness,
) -> None:
    """A grace of 0 (every reuse after the window): the derived successor changes nothing."""
    gw = strict
    login = await gw.login("shop-mp", "jon")
    rotated = await refresh(gw, login["refreshToken"])
    reused = await refresh(gw, login["refreshToken"])
    assert reused["code"] == "REFRESH_TOKEN_REUSED"
    assert (await refresh(gw, rotated["refreshToken"]))["code"] == "INVALID_REFRESH_TOKEN"


async def test_reuse_after_the_grace_window_revokes_the_session(gw: Harness) -> None:
    login = await gw.login("shop-mp", "hugo")
    rotated = await refresh(gw, login["refreshToken"])
    await _age_spent_refresh_tokens(gw, seconds=31)  # the window (30 s) has passed
    reused = await refresh(gw, login["refreshToken"])
    assert (reused["__typename"], reused["code"]) == ("RefreshTokenError", "REFRESH_TOKEN_REUSED")
    assert await viewer_id(gw, rotated["accessToken"]) is None
    assert (await refresh(gw, rotated["refreshToken"]))["code"] == "INVALID_REFRESH_TOKEN"


async def _age_spent_refresh_tokens(gw: Harness, *, seconds: int) -> None:
    """Move the spending of every used refresh token ``seconds`` into the past."""
    long_ago = datetime.now(UTC) - timedelta(seconds=seconds)
    engine = create_engine(gw.config.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(RefreshToken)
                .where(col(RefreshToken.used_at).is_not(None))
                .values(used_at=long_ago)
            )
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("x" * 43, "INVALID_REFRESH_TOKEN"),
        ("", "INVALID_INPUT"),
        ("y" * 129, "INVALID_INPUT"),
    ],
    ids=["unknown", "empty", "too-long"],
)
async def test_bad_refresh_tokens_are_typed_errors(gw: Harness, token: str, code: str) -> None:
    result = await refresh(gw, token)
    assert result["code"] == code


async def test_an_access_token_is_not_a_refresh_token(gw: Harness) -> None:
    login = await gw.login("shop-mp", "dina")
    result = await refresh(gw, login["accessToken"][:128])
    assert result["code"] == "INVALID_REFRESH_TOKEN"


# --- logout ----------------------------------------------------------------------------------


async def test_logout_needs_a_valid_access_token(gw: Harness) -> None:
    result = await logout(gw, None)
    assert (result["__typename"], result["code"]) == ("NotAuthenticatedError", "NOT_LOGGED_IN")
    assert result["message"]
    assert await gw.refused(LOGOUT, {"everywhere": False}, token="not-a-token") == "INVALID_TOKEN"
    assert await rows(gw, "audit_events") == []


async def test_logout_revokes_this_session_only(gw: Harness) -> None:
    phone = await gw.login("shop-mp", "emma")
    tablet = await gw.login("shop-mp", "emma")
    assert phone["account"]["id"] == tablet["account"]["id"]

    result = await logout(gw, phone["accessToken"])
    assert result == {"__typename": "LogoutSuccess", "revokedSessions": 1}
    assert await viewer_id(gw, phone["accessToken"]) is None
    assert (await refresh(gw, phone["refreshToken"]))["code"] == "INVALID_REFRESH_TOKEN"
    again = await gw.refused(LOGOUT, {"everywhere": False}, token=phone["accessToken"])
    assert again == "INVALID_TOKEN"

    assert await viewer_id(gw, tablet["accessToken"]) == tablet["account"]["id"]
    assert (await refresh(gw, tablet["refreshToken"]))["__typename"] == "RefreshSuccess"


async def test_logout_everywhere_revokes_every_session_of_the_account(gw: Harness) -> None:
    sessions = [
        await gw.login("shop-mp", "finn"),
        await gw.login("club-mp", "finn"),
        await gw.login("shop-mp", "finn"),
    ]
    bystander = await gw.login("shop-mp", "gale")
    assert len({s["account"]["id"] for s in sessions}) == 1

    result = await logout(gw, sessions[1]["accessToken"], everywhere=True)
    assert result == {"__typename": "LogoutSuccess", "revokedSessions": 3}
    for session in sessions:
        assert await viewer_id(gw, session["accessToken"]) is None
        assert (await refresh(gw, session["refreshToken"]))["code"] == "INVALID_REFRESH_TOKEN"
    assert await viewer_id(gw, bystander["accessToken"]) == bystander["account"]["id"]


# --- access tokens ---------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_access_tokens_carry_kid_and_at_jwt_type_and_match_the_jwks(gw: Harness) -> None:
    login = await gw.login("shop-mp", "hana")
    header, claims = segments(login["accessToken"])
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    jwks = (await gw.client.get("/.well-known/jwks.json")).json()
    published = {k["kid"]: k for k in jwks["keys"]}
    assert header["kid"] in published
    assert "d" not in published[header["kid"]]  # no private part is published
    # the published key verifies the token
    public = KeySet.import_key_set(jwks)
    decoded = jwt.decode(login["accessToken"], public, algorithms=["ES256"])
    assert decoded.claims["sub"]
    assert decoded.claims["sid"]
    assert claims["exp"] > time.time()
    # nothing WeChat-private rides in the token
    ids = await gw.wechat_ids("shop-mp", "hana")
    for secret in (ids["openid"], ids["unionid"], ids["session_key"]):
        assert secret
        assert secret not in json.dumps(claims)


async def test_a_token_re_signed_with_the_gateway_key_is_accepted(gw: Harness) -> None:
    """Control for the forgeries below: the crafting itself yields a token that works."""
    login = await gw.login("shop-mp", "ivan")
    header, claims = segments(login["accessToken"])
    token = jwt.encode(header, claims, gateway_key(gw, header["kid"]))
    assert token != login["accessToken"]
    assert await viewer_id(gw, token) == login["account"]["id"]


async def test_an_expired_access_token_is_refused(gw: Harness) -> None:
    login = await gw.login("shop-mp", "jade")
    header, claims = segments(login["accessToken"])
    now = int(time.time())
    expired = {**claims, "iat": now - 3600, "exp": now - 60}
    token = jwt.encode(header, expired, gateway_key(gw, header["kid"]))
    assert await gw.refused(VIEWER, token=token) == "TOKEN_EXPIRED"
    assert await gw.refused(LOGOUT, {"everywhere": False}, token=token) == "TOKEN_EXPIRED"


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "partner"},
        {"iss": "someone-else"},
        {"sub": None},
        {"sid": None},
        {"exp": None},
        {"sid": "00000000-0000-0000-0000-000000000000"},
    ],
    ids=["audience", "issuer", "no-sub", "no-sid", "no-exp", "unknown-session"],
)
async def test_tokens_with_wrong_claims_are_refused(gw: Harness, change: dict[str, Any]) -> None:
    login = await gw.login("shop-mp", "kira")
    header, claims = segments(login["accessToken"])
    claims = {k: v for k, v in {**claims, **change}.items() if v is not None}
    token = jwt.encode(header, claims, gateway_key(gw, header["kid"]))
    assert await viewer_id(gw, token) is None


@pytest.mark.parametrize("typ", ["JWT", None], ids=["jwt", "none"])
async def test_tokens_of_another_type_are_refused(gw: Harness, typ: str | None) -> None:
    login = await gw.login("shop-mp", "lena")
    header, claims = segments(login["accessToken"])
    header = {k: v for k, v in {**header, "typ": typ}.items() if v is not None}
    token = jwt.encode(header, claims, gateway_key(gw, header["kid"]))
    assert await viewer_id(gw, token) is None


@pytest.mark.parametrize("same_kid", [False, True], ids=["own-kid", "gateway-kid"])
async def test_a_token_signed_by_another_key_is_refused(gw: Harness, same_kid: bool) -> None:
    login = await gw.login("shop-mp", "mona")
    header, claims = segments(login["accessToken"])
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    forged_header = {**header, "kid": header["kid"] if same_kid else stranger.kid}
    token = jwt.encode(forged_header, claims, stranger)
    assert await viewer_id(gw, token) is None
    assert await gw.refused(LOGOUT, {"everywhere": False}, token=token) == "INVALID_TOKEN"
    assert await viewer_id(gw, login["accessToken"]) == login["account"]["id"]


async def test_unsigned_and_symmetric_tokens_are_refused(gw: Harness) -> None:
    login = await gw.login("shop-mp", "nora")
    header, claims = segments(login["accessToken"])
    unsigned = f"{_b64({**header, 'alg': 'none'})}.{_b64(claims)}."
    assert await viewer_id(gw, unsigned) is None
    # HS256 keyed with the public key material (algorithm confusion)
    public = json.dumps((await gw.client.get("/.well-known/jwks.json")).json()["keys"][0])
    signing_input = f"{_b64({**header, 'alg': 'HS256'})}.{_b64(claims)}"
    mac = hmac.new(public.encode(), signing_input.encode(), hashlib.sha256).digest()
    hs256 = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert await viewer_id(gw, hs256) is None


# --- audit and storage -----------------------------------------------------------------------


async def test_every_mutation_is_audited_with_client_facts(strict: Harness) -> None:
    gw = strict
    login = await gw.login("shop-mp", "olga", **CLIENT)
    second = await gw.login("shop-mp", "olga", platform="ios")
    rotated = await refresh(gw, login["refreshToken"], client={**CLIENT, "channel": "refresh-ch"})
    await refresh(gw, login["refreshToken"], client={"platform": "web"})  # reuse
    await logout(gw, second["accessToken"], client={**CLIENT, "deviceParam": "logout-dev"})
    third = await gw.login("shop-mp", "olga", platform="windows")
    await logout(gw, third["accessToken"], everywhere=True, client={"platform": "windows"})
    assert rotated["__typename"] == "RefreshSuccess"

    events = await rows(gw, "audit_events")
    facts = sorted(
        (e["kind"], e["platform"], e["channel"], e["device_param"], e["ip"]) for e in events
    )
    assert facts == sorted(
        [
            ("register", "android", "huawei-store", "model=P60;os=12", IP),
            ("login", "ios", None, None, IP),
            ("refresh", "android", "refresh-ch", "model=P60;os=12", IP),
            ("refresh_reuse", "web", None, None, IP),
            ("logout", "android", "huawei-store", "logout-dev", IP),
            ("login", "windows", None, None, IP),
            ("logout", "windows", None, None, IP),
        ]
    )
    account_ids = {e["account_id"] for e in events}
    assert len(account_ids) == 1
    assert None not in account_ids
    assert all(e["app_key"] == "shop-mp" for e in events)
    assert all(e["session_id"] is not None for e in events)

    sessions = await rows(gw, "login_sessions")
    assert sorted((s["platform"], s["channel"], s["device_param"], s["ip"]) for s in sessions) == [
        ("android", "huawei-store", "model=P60;os=12", IP),
        ("ios", None, None, IP),
        ("windows", None, None, IP),
    ]
    assert all(s["user_agent"] for s in sessions)
    assert all(s["revoked_at"] is not None for s in sessions)


async def test_no_token_or_session_key_is_stored_in_clear(strict: Harness) -> None:
    gw = strict
    login = await gw.login("shop-mp", "pia")
    rotated = await refresh(gw, login["refreshToken"])
    await refresh(gw, login["refreshToken"])  # reuse, audited
    again = await gw.login("shop-mp", "pia")
    await logout(gw, again["accessToken"], everywhere=True)
    session_key = (await gw.wechat_ids("shop-mp", "pia"))["session_key"]
    assert session_key

    secrets = {
        "refresh token": login["refreshToken"],
        "rotated refresh token": rotated["refreshToken"],
        "second refresh token": again["refreshToken"],
        "access token": login["accessToken"],
        "rotated access token": rotated["accessToken"],
        "access token signature": login["accessToken"].rsplit(".", 1)[1],
        "session_key": session_key,
    }
    stored = {
        table: repr(await rows(gw, table))
        for table in (
            "audit_events",
            "login_sessions",
            "refresh_tokens",
            "wechat_sessions",
            "identities",
            "accounts",
        )
    }
    assert "refresh_reuse" in stored["audit_events"]
    for table, dump in stored.items():
        for name, secret in secrets.items():
            assert secret not in dump, f"{name} found in {table}"
    # refresh tokens are kept as digests, one per issued token
    assert len(await rows(gw, "refresh_tokens")) == 3


async def test_a_stale_header_does_not_block_what_needs_no_login(gw: Harness) -> None:
    """Clients that attach their header to every call can still refresh and log in with it;
    anything that reads the caller is refused as a whole."""
    login = await gw.login("shop-mp", "tess")
    await logout(gw, login["accessToken"])  # the header's token is dead from now on
    stale = {"authorization": f"Bearer {login['accessToken']}"}
    code = await gw.mint("shop-mp", "tess")
    again = await gw.client.post(
        "/graphql",
        json={
            "query": LOGIN_AGAIN,
            "variables": {"code": code},
        },
        headers=stale,
    )
    assert again.status_code == 200, again.text
    assert again.json()["data"]["loginByCode"]["__typename"] == "LoginSuccess"
    apps = await gw.client.post("/graphql", json={"query": "{ apps { key } }"}, headers=stale)
    assert apps.status_code == 200
    mixed = "{ apps { key } viewer { id } }"
    assert await gw.refused(mixed, token=login["accessToken"]) == "INVALID_TOKEN"


LOGIN_AGAIN = """mutation($code: String!) { loginByCode(input: {app: "shop-mp", code: $code,
  client: {platform: "ios"}}) { __typename } }"""
