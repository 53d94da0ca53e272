"""One account per person across every WeChat door (DESIGN §2, invariants 1-4).

Official accounts log in with an OAuth2 code and the ``state`` from ``authorizationUrl``;
mini-programs with a ``wx.login`` code. Unionid first, then openid: the first sight of a unionid
attaches it, a unionid already on another account merges the two (the older survives).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import col

from gateway.accounts.tables import Account, Identity, WechatSession
from gateway.config import load_config
from gateway.store.models import LoginSession
from tests.support.accounts import (
    AUTHORIZATION_URL,
    LOGIN_WITH_STATE,
    REDIRECT,
    account_uuid,
    accounts_in_db,
    count,
    identities_in_db,
    kinds,
    merge_events,
    oa_attempt,
    oa_login,
    oa_state,
    two_accounts_of_dave,
    viewer,
)
from tests.support.harness import APPS_TOML, Harness, MakeConfig, running

REFRESH = """
mutation($token: String!) {
  refreshToken(refreshToken: $token) {
    __typename
    ... on RefreshSuccess { accessToken account { id } }
    ... on Error { code }
  }
}
"""


# -- helpers -----------------------------------------------------------------------------------


async def table_counts(gw: Harness) -> dict[str, int]:
    tables = {
        "accounts": Account,
        "identities": Identity,
        "login_sessions": LoginSession,
        "wechat_sessions": WechatSession,
    }
    return {name: await count(gw, model) for name, model in tables.items()}


async def expected_subjects(gw: Harness, user: str, apps: list[str]) -> set[tuple[str, str, str]]:
    """(kind, scope, subject) WeChat's ids for ``user`` should be stored under."""
    keys: set[tuple[str, str, str]] = set()
    for app in apps:
        ids = await gw.wechat_ids(app, user)
        config = gw.config.app(app)
        assert config is not None
        keys.add(("wechat_openid", config.appid, str(ids["openid"])))
        if ids["unionid"] and config.platform:
            keys.add(("wechat_unionid", config.platform, str(ids["unionid"])))
    return keys


# -- authorizationUrl and state ---------------------------------------------------------------


async def test_authorization_url_for_an_official_account(gw: Harness) -> None:
    body = await gw.gql(
        AUTHORIZATION_URL, {"app": "news-oa", "redirect": REDIRECT, "scope": "snsapi_userinfo"}
    )
    result = body["data"]["authorizationUrl"]
    assert result["__typename"] == "AuthorizationUrl"
    parts = urlsplit(result["url"])
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "open.weixin.qq.com",
        "/connect/oauth2/authorize",
    )
    assert parts.fragment == "wechat_redirect"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "appid": gw.appid("news-oa"),
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "snsapi_userinfo",
        "state": result["state"],
    }
    assert len(result["state"]) <= 128
    default = await gw.gql(AUTHORIZATION_URL, {"app": "news-oa", "redirect": REDIRECT})
    assert "scope=snsapi_base" in default["data"]["authorizationUrl"]["url"]
    assert default["data"]["authorizationUrl"]["state"] != result["state"]


REFUSALS = [
    ({"app": "shop-mp"}, "UnknownAppError", "UNSUPPORTED_APP_KIND", None),
    ({"app": "nope"}, "UnknownAppError", "UNKNOWN_APP", None),
    ({"app": "news-oa", "scope": "snsapi_login"}, "InvalidInputError", "INVALID_INPUT", "scope"),
    (
        {"app": "news-oa", "redirect": "javascript:alert(1)"},
        "InvalidInputError",
        "INVALID_INPUT",
        "redirectUri",
    ),
]


async def test_authorization_url_refusals_are_typed(gw: Harness) -> None:
    for variables, typename, code, field in REFUSALS:
        body = await gw.gql(AUTHORIZATION_URL, {"redirect": REDIRECT, **variables})
        result = body["data"]["authorizationUrl"]
        assert (result["__typename"], result["code"]) == (typename, code), variables
        assert result.get("field") == field


async def test_a_state_the_gateway_did_not_issue_is_refused_before_wechat(gw: Harness) -> None:
    state = await oa_state(gw)
    other = await oa_state(gw)
    expires, nonce, mac = state.split(".")
    forgeries = [
        f"{int(expires, 16) + 3600:x}.{nonce}.{mac}",  # a longer life
        f"{expires}.{nonce}.{other.split('.')[2]}",  # another state's mac
        "a.b.c",
        state + "x",
    ]
    code = await gw.mint("news-oa", "mallory", scope="snsapi_userinfo")
    for forged in forgeries:
        body = await gw.gql(LOGIN_WITH_STATE, {"app": "news-oa", "code": code, "state": forged})
        result = body["data"]["loginByCode"]
        assert (result["__typename"], result["code"], result["field"]) == (
            "InvalidInputError",
            "INVALID_STATE",
            "state",
        ), forged
    assert await gw.upstream_calls("/sns/oauth2/access_token") == 0
    assert (await table_counts(gw))["accounts"] == 0
    # the code was not spent: with the real state it still logs in
    body = await gw.gql(LOGIN_WITH_STATE, {"app": "news-oa", "code": code, "state": state})
    assert body["data"]["loginByCode"]["__typename"] == "LoginSuccess"


# -- official-account logins ------------------------------------------------------------------


async def test_official_account_userinfo_login_stores_unionid_openid_and_profile(
    gw: Harness,
) -> None:
    login = await oa_login(gw, "alice")
    assert login["isNewAccount"] is True
    assert kinds(login["account"]) == [("WECHAT_OPENID", "news-oa"), ("WECHAT_UNIONID", None)]
    assert login["account"]["nickname"] == "alice"
    assert login["account"]["avatarUrl"].startswith("https://thirdwx.qlogo.cn/")
    stored = {(i.kind, i.scope, i.subject) for i in await identities_in_db(gw)}
    assert stored == await expected_subjects(gw, "alice", ["news-oa"])
    assert await gw.upstream_calls("/sns/userinfo") == 1
    # an OAuth login keeps no mini-program session_key
    assert (await table_counts(gw))["wechat_sessions"] == 0


async def test_an_official_account_code_sent_again_gets_the_same_login_and_profile(
    gw: Harness,
) -> None:
    """The retry is answered from the remembered exchange: no second call to WeChat, and
    nothing of what the first one said (unionid, nickname, avatar) is lost."""
    state = await oa_state(gw, scope="snsapi_userinfo")
    code = await gw.mint("news-oa", "olga", scope="snsapi_userinfo")
    variables = {"app": "news-oa", "code": code, "state": state}
    first, again = [
        (await gw.gql(LOGIN_WITH_STATE, variables))["data"]["loginByCode"] for _ in range(2)
    ]
    assert first["__typename"] == again["__typename"] == "LoginSuccess", (first, again)
    assert (first["isNewAccount"], again["isNewAccount"]) == (True, False)
    assert again["account"] == first["account"]
    assert again["account"]["nickname"] == "olga"
    assert kinds(again["account"]) == [("WECHAT_OPENID", "news-oa"), ("WECHAT_UNIONID", None)]
    assert await gw.upstream_calls("/sns/oauth2/access_token") == 1
    assert await gw.upstream_calls("/sns/userinfo") == 1


async def test_base_scope_login_knows_only_the_openid_and_unionid_attaches_on_first_sight(
    gw: Harness,
) -> None:
    base = await oa_login(gw, "bob", scope="snsapi_base")
    assert kinds(base["account"]) == [("WECHAT_OPENID", "news-oa")]
    assert base["account"]["nickname"] is None
    assert await gw.upstream_calls("/sns/userinfo") == 0

    full = await oa_login(gw, "bob", scope="snsapi_userinfo")
    assert full["isNewAccount"] is False
    assert full["account"]["id"] == base["account"]["id"]
    assert kinds(full["account"]) == [("WECHAT_OPENID", "news-oa"), ("WECHAT_UNIONID", None)]
    assert full["account"]["nickname"] == "bob"

    # the unionid now finds bob whatever door he uses next
    shop = await gw.login("shop-mp", "bob")
    assert (shop["isNewAccount"], shop["account"]["id"]) == (False, base["account"]["id"])
    assert await merge_events(gw) == []


DOORS = ("shop-mp", "news-oa", "club-mp")


async def _enter(gw: Harness, door: str, user: str) -> dict[str, Any]:
    return await oa_login(gw, user) if door == "news-oa" else await gw.login(door, user)


@pytest.mark.parametrize("order", list(itertools.permutations(DOORS)), ids="->".join)
async def test_done_when_one_person_through_every_door_is_one_account(
    gw: Harness, order: tuple[str, ...]
) -> None:
    logins = [await _enter(gw, door, "carol") for door in order]
    assert [login["isNewAccount"] for login in logins] == [True, False, False]
    assert len({login["account"]["id"] for login in logins}) == 1
    me = await viewer(gw, logins[0]["accessToken"])
    assert kinds(me) == sorted(
        [("WECHAT_UNIONID", None)] + [("WECHAT_OPENID", door) for door in DOORS]
    )
    stored = {(i.kind, i.scope, i.subject) for i in await identities_in_db(gw)}
    assert stored == await expected_subjects(gw, "carol", list(DOORS))
    assert await count(gw, Account) == 1
    assert await merge_events(gw) == []

    # a mini-program outside the open platform has no unionid: a second account
    solo = await gw.login("solo-mp", "carol")
    assert solo["isNewAccount"] is True
    assert solo["account"]["id"] != logins[0]["account"]["id"]
    assert kinds(solo["account"]) == [("WECHAT_OPENID", "solo-mp")]
    again = await _enter(gw, order[-1], "carol")
    assert again["account"]["id"] == logins[0]["account"]["id"]
    assert await count(gw, Account) == 2


async def test_other_people_stay_apart(gw: Harness) -> None:
    alice = await gw.login("shop-mp", "alice")
    bob = await oa_login(gw, "bob")
    assert alice["account"]["id"] != bob["account"]["id"]
    assert (await oa_login(gw, "alice"))["account"]["id"] == alice["account"]["id"]
    assert (await gw.login("club-mp", "bob"))["account"]["id"] == bob["account"]["id"]
    assert await count(gw, Account) == 2


WEB_AND_APP = """
[[apps]]
key = "news-web"
kind = "website"
appid = "wxtestweb0000005"
secret = "web-secret-0123456789"
platform = "test-platform"
name = "News website"

[[apps]]
key = "news-app"
kind = "mobile_app"
appid = "wxtestapp0000006"
secret = "app-secret-0123456789"
platform = "test-platform"
name = "News app"
"""


@pytest.fixture
async def all_doors(
    database_url: str, make_config: MakeConfig, tmp_path: Path
) -> AsyncIterator[Harness]:
    """The test apps plus a website (QR login) and a mobile app on the same platform."""
    apps = tmp_path / "all-doors.toml"
    apps.write_text(APPS_TOML + WEB_AND_APP, encoding="utf-8")
    settings = make_config(database_url).settings.model_copy(update={"config": apps})
    async with running(load_config(settings)) as gw:
        yield gw


async def test_website_qr_and_mobile_app_logins_join_the_same_account(all_doors: Harness) -> None:
    gw = all_doors
    shop = await gw.login("shop-mp", "gwen")
    web_url = await gw.gql(AUTHORIZATION_URL, {"app": "news-web", "redirect": REDIRECT})
    web = web_url["data"]["authorizationUrl"]
    assert urlsplit(web["url"]).path == "/connect/qrconnect"
    assert "scope=snsapi_login" in web["url"]

    # a state is bound to its app: news-oa's does not open news-web's door
    code = await gw.mint("news-web", "gwen")
    wrong = await gw.gql(
        LOGIN_WITH_STATE, {"app": "news-web", "code": code, "state": await oa_state(gw)}
    )
    assert wrong["data"]["loginByCode"]["code"] == "INVALID_STATE"
    site = await gw.gql(LOGIN_WITH_STATE, {"app": "news-web", "code": code, "state": web["state"]})
    site_login = site["data"]["loginByCode"]
    assert site_login["__typename"] == "LoginSuccess", site_login
    assert (site_login["isNewAccount"], site_login["account"]["id"]) == (
        False,
        shop["account"]["id"],
    )

    # the mobile app's OpenSDK hands over a code directly: no browser, no state
    code = await gw.mint("news-app", "gwen")
    app = (await gw.gql(LOGIN_WITH_STATE, {"app": "news-app", "code": code}))["data"]["loginByCode"]
    assert app["__typename"] == "LoginSuccess", app
    assert app["account"]["id"] == shop["account"]["id"]
    assert app["account"]["nickname"] == "gwen"
    assert kinds(app["account"]) == [
        ("WECHAT_OPENID", "news-app"),
        ("WECHAT_OPENID", "news-web"),
        ("WECHAT_OPENID", "shop-mp"),
        ("WECHAT_UNIONID", None),
    ]
    assert await count(gw, Account) == 1


# -- merges -----------------------------------------------------------------------------------


@pytest.mark.parametrize("oa_first", [True, False], ids=["oa-first", "shop-first"])
async def test_a_unionid_on_another_account_merges_into_the_older(
    gw: Harness, oa_first: bool
) -> None:
    older, newer = await two_accounts_of_dave(gw, oa_first)
    survivor_id = account_uuid(older["account"]["id"])
    absorbed_id = account_uuid(newer["account"]["id"])

    proof = await oa_login(gw, "dave", scope="snsapi_userinfo")  # unionid + known openid
    assert proof["isNewAccount"] is False
    assert proof["account"]["id"] == older["account"]["id"]
    assert kinds(proof["account"]) == [
        ("WECHAT_OPENID", "news-oa"),
        ("WECHAT_OPENID", "shop-mp"),
        ("WECHAT_UNIONID", None),
    ]
    assert proof["account"]["nickname"] == "dave"

    # the graph: everything on the survivor, the other merged and pointing at it
    accounts = await accounts_in_db(gw)
    assert (accounts[survivor_id].status, accounts[survivor_id].merged_into_id) == ("active", None)
    assert (accounts[absorbed_id].status, accounts[absorbed_id].merged_into_id) == (
        "merged",
        survivor_id,
    )
    assert {i.account_id for i in await identities_in_db(gw)} == {survivor_id}
    assert await count(gw, LoginSession, col(LoginSession.account_id) == absorbed_id) == 0
    assert await count(gw, LoginSession, col(LoginSession.account_id) == survivor_id) == 3
    events = await merge_events(gw)
    assert len(events) == 1
    assert events[0].account_id == survivor_id
    assert events[0].detail["merged"] == [str(absorbed_id)]

    # the merged account's tokens keep working, as the survivor
    for token in (newer["accessToken"], older["accessToken"]):
        me = await viewer(gw, token)
        assert (me["id"], me["status"]) == (older["account"]["id"], "active")
        assert len(me["identities"]) == 3
    refreshed = (await gw.gql(REFRESH, {"token": newer["refreshToken"]}))["data"]["refreshToken"]
    assert refreshed["__typename"] == "RefreshSuccess"
    assert refreshed["account"]["id"] == older["account"]["id"]
    assert (await viewer(gw, refreshed["accessToken"]))["id"] == older["account"]["id"]

    # and it stays one account afterwards, through every door
    for door in DOORS:
        assert (await _enter(gw, door, "dave"))["account"]["id"] == older["account"]["id"]
    assert len(await merge_events(gw)) == 1


async def test_a_merge_is_all_or_nothing(gw: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the merge, in the same transaction, leaves both accounts as they were."""
    older, newer = await two_accounts_of_dave(gw, oa_first=True)
    before = {i.id: i.account_id for i in await identities_in_db(gw)}
    sessions_before = await count(gw, LoginSession)

    async def crash(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr("gateway.accounts.profile.keep_profile", crash)
        state = await oa_state(gw)
        code = await gw.mint("news-oa", "dave", scope="snsapi_userinfo")
        body = await gw.gql(LOGIN_WITH_STATE, {"app": "news-oa", "code": code, "state": state})
    assert body["data"] is None
    assert [e["message"] for e in body["errors"]] == ["Internal server error."]  # English: default
    assert "disk full" not in str(body)

    assert {i.id: i.account_id for i in await identities_in_db(gw)} == before
    assert {a.status for a in (await accounts_in_db(gw)).values()} == {"active"}
    assert await count(gw, LoginSession) == sessions_before
    assert await merge_events(gw) == []
    assert (await viewer(gw, newer["accessToken"]))["id"] == newer["account"]["id"]

    merged = await oa_login(gw, "dave")  # the same proof, without the fault, does merge
    assert merged["account"]["id"] == older["account"]["id"]
    assert len(await merge_events(gw)) == 1


# -- snapshot users ---------------------------------------------------------------------------


async def test_snapshot_users_create_bind_and_merge_nothing(gw: Harness) -> None:
    erin = await oa_login(gw, "erin", scope="snsapi_base")  # a real erin, openid only
    await gw.login("shop-mp", "erin")  # and a second real account with erin's unionid
    before = await table_counts(gw)
    identities_before = {
        (i.kind, i.scope, i.subject, i.account_id) for i in await identities_in_db(gw)
    }

    # a known and an unknown person behind the snapshot page, with either scope
    for user, scope in itertools.product(("erin", "zoe"), ("snsapi_base", "snsapi_userinfo")):
        result = await oa_attempt(gw, user, scope=scope, snapshot=True)
        assert (result["__typename"], result["code"]) == ("SnapshotUserError", "SNAPSHOT_USER")
        assert result["message"]

    assert await table_counts(gw) == before
    after = {(i.kind, i.scope, i.subject, i.account_id) for i in await identities_in_db(gw)}
    assert after == identities_before
    assert await merge_events(gw) == []
    assert (await viewer(gw, erin["accessToken"]))["id"] == erin["account"]["id"]
    assert await gw.upstream_calls("/sns/userinfo") == 0


# -- concurrency ---------------------------------------------------------------------------


async def test_concurrent_first_logins_through_a_miniprogram_and_an_official_account(
    gw: Harness,
) -> None:
    """Many first logins of one new person through two doors at once: one account, no error."""
    shop_codes = [await gw.mint("shop-mp", "frank") for _ in range(6)]
    oa = [
        (await gw.mint("news-oa", "frank", scope="snsapi_userinfo"), await oa_state(gw))
        for _ in range(6)
    ]
    bodies = await asyncio.gather(
        *(gw.gql(LOGIN_WITH_STATE, {"app": "shop-mp", "code": code}) for code in shop_codes),
        *(gw.gql(LOGIN_WITH_STATE, {"app": "news-oa", "code": c, "state": s}) for c, s in oa),
    )
    assert all("errors" not in body for body in bodies), bodies
    results = [body["data"]["loginByCode"] for body in bodies]
    assert {r["__typename"] for r in results} == {"LoginSuccess"}, results
    assert len({r["account"]["id"] for r in results}) == 1
    assert sum(r["isNewAccount"] for r in results) == 1
    assert await count(gw, Account) == 1
    stored = {(i.kind, i.scope, i.subject) for i in await identities_in_db(gw)}
    assert stored == await expected_subjects(gw, "frank", ["shop-mp", "news-oa"])
    assert await merge_events(gw) == []


async def test_concurrent_logins_that_prove_the_same_merge_make_one_survivor(
    gw: Harness,
) -> None:
    older, newer = await two_accounts_of_dave(gw, oa_first=True)
    pending = [
        (await gw.mint("news-oa", "dave", scope="snsapi_userinfo"), await oa_state(gw))
        for _ in range(6)
    ]
    bodies = await asyncio.gather(
        *(gw.gql(LOGIN_WITH_STATE, {"app": "news-oa", "code": c, "state": s}) for c, s in pending)
    )
    assert all("errors" not in body for body in bodies), bodies
    results = [body["data"]["loginByCode"] for body in bodies]
    assert {r["__typename"] for r in results} == {"LoginSuccess"}, results
    assert {r["account"]["id"] for r in results} == {older["account"]["id"]}
    accounts = await accounts_in_db(gw)
    assert sorted(a.status for a in accounts.values()) == ["active", "merged"]
    assert {i.account_id for i in await identities_in_db(gw)} == {
        account_uuid(older["account"]["id"])
    }
    assert len(await merge_events(gw)) == 1
    assert (await viewer(gw, newer["accessToken"]))["id"] == older["account"]["id"]
