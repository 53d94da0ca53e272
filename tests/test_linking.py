"""Linking for a logged-in account, its sessions, and the audit trail, through GraphQL over HTTP.

bindCredential adds a username/password to a WeChat account; linkWechat adds a WeChat identity
to any account (a conflict when it is someone else's, a merge when a unionid proves the two
accounts are one person); unlinkIdentity never removes the last one (DESIGN §2, invariant 5).
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlmodel import SQLModel, col

from gateway.accounts.tables import Account
from gateway.store.models import AuditEvent
from tests.support.accounts import IDENTITIES, LINK, account_uuid, link, oa_login, oa_state
from tests.support.harness import Harness
from tests.support.passwords import (
    CHANGE_PASSWORD,
    GOOD_PASSWORD,
    change_password,
    from_ip,
    gql,
    password_login,
    register,
    registered,
    viewer_id,
)

BIND = f"""
mutation($username: String!, $password: String!) {{
  bindCredential(input: {{username: $username, password: $password,
                          client: {{platform: "android"}}}}) {{
    __typename
    ... on AccountResult {{ {IDENTITIES} }}
    ... on Error {{ code message }}
  }}
}}
"""
UNLINK = f"""
mutation($id: ID!, $client: ClientInput) {{
  unlinkIdentity(id: $id, client: $client) {{
    __typename
    ... on AccountResult {{ {IDENTITIES} }}
    ... on Error {{ code message }}
  }}
}}
"""
VIEWER = "{ viewer { id status identities { id kind label app { key } } } }"
SESSIONS = """
{ viewer { sessions {
  id app { key } platform channel deviceParam ip userAgent createdAt lastUsedAt expiresAt current
} } }
"""
REVOKE = """
mutation($id: ID!) {
  revokeSession(id: $id) {
    __typename
    ... on RevokeSessionSuccess { revoked }
    ... on Error { code message }
  }
}
"""


def kinds(account: dict[str, Any]) -> list[tuple[str, str | None]]:
    return sorted((i["kind"], i["app"] and i["app"]["key"]) for i in account["identities"])


async def viewer(gw: Harness, token: str) -> dict[str, Any]:
    body = await gql(gw.client, VIEWER, {}, token)
    result: dict[str, Any] = body["data"]["viewer"]
    return result


async def bind(gw: Harness, token: str | None, username: str, password: str) -> dict[str, Any]:
    body = await gql(gw.client, BIND, {"username": username, "password": password}, token)
    result: dict[str, Any] = body["data"]["bindCredential"]
    return result


async def unlink(
    gw: Harness, token: str | None, identity_id: str, client: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = await gql(gw.client, UNLINK, {"id": identity_id, "client": client}, token)
    result: dict[str, Any] = body["data"]["unlinkIdentity"]
    return result


def identity_of(account: dict[str, Any], kind: str) -> str:
    (found,) = [i["id"] for i in account["identities"] if i["kind"] == kind]
    return str(found)


# -- bindCredential ----------------------------------------------------------------------------


async def test_bind_credential_then_password_login_reaches_the_wechat_account(
    gw: Harness,
) -> None:
    wechat = await gw.login("shop-mp", "wx-anna")
    result = await bind(gw, wechat["accessToken"], "Anna.W", GOOD_PASSWORD)
    assert result["__typename"] == "AccountResult", result
    assert result["account"]["id"] == wechat["account"]["id"]
    assert kinds(result["account"]) == [
        ("USERNAME", "shop-mp"),
        ("WECHAT_OPENID", "shop-mp"),
        ("WECHAT_UNIONID", "shop-mp"),
    ]
    assert [i["label"] for i in result["account"]["identities"] if i["kind"] == "USERNAME"] == [
        "anna.w"
    ]
    login = await password_login(gw, "anna.w")
    assert login["__typename"] == "LoginSuccess", login
    assert login["account"]["id"] == wechat["account"]["id"]
    assert login["isNewAccount"] is False


async def test_bind_credential_typed_failures_change_nothing(gw: Harness) -> None:
    await registered(gw, "carol")
    wechat = await gw.login("shop-mp", "wx-carol")
    token = wechat["accessToken"]
    for username, password, typename, code in [
        ("carol", "other-Secret-55", "ConflictError", "USERNAME_TAKEN"),
        ("CAROL", "other-Secret-55", "ConflictError", "USERNAME_TAKEN"),
        ("wx-carol", "password1", "WeakPasswordError", "WEAK_PASSWORD"),
        ("wx-carol", "my-wx-carol-pw", "WeakPasswordError", "WEAK_PASSWORD"),
        ("no", "other-Secret-55", "InvalidInputError", "INVALID_INPUT"),
    ]:
        result = await bind(gw, token, username, password)
        assert (result["__typename"], result["code"]) == (typename, code), username
    assert "USERNAME" not in [k for k, _ in kinds(await viewer(gw, token))]
    assert (await password_login(gw, "carol", "other-Secret-55"))["code"] == "INVALID_CREDENTIALS"

    anonymous = await bind(gw, None, "carol2", "other-Secret-55")
    assert (anonymous["__typename"], anonymous["code"]) == (
        "NotAuthenticatedError",
        "NOT_LOGGED_IN",
    )


async def test_a_second_bind_is_credential_exists(gw: Harness) -> None:
    wechat = await gw.login("shop-mp", "wx-dora")
    assert (await bind(gw, wechat["accessToken"], "dora", GOOD_PASSWORD))["__typename"] == (
        "AccountResult"
    )
    for username in ("dora", "dora2"):
        again = await bind(gw, wechat["accessToken"], username, "second-Secret-66")
        assert (again["__typename"], again["code"]) == ("ConflictError", "CREDENTIAL_EXISTS")
    assert (await password_login(gw, "dora"))["__typename"] == "LoginSuccess"
    assert (await password_login(gw, "dora2", "second-Secret-66"))["code"] == "INVALID_CREDENTIALS"
    password_account = await registered(gw, "dora3")
    again = await bind(gw, password_account["accessToken"], "dora4", "second-Secret-66")
    assert again["code"] == "CREDENTIAL_EXISTS"


# -- linkWechat --------------------------------------------------------------------------------


async def test_link_wechat_adds_the_identity_and_wechat_login_lands_on_the_account(
    gw: Harness,
) -> None:
    created = await registered(gw, "emma")
    result = await link(gw, created["accessToken"], "shop-mp", "wx-emma")
    assert result["__typename"] == "LinkWechatSuccess", result
    assert result["merged"] is False
    assert result["account"]["id"] == created["account"]["id"]
    assert kinds(result["account"]) == [
        ("USERNAME", "shop-mp"),
        ("WECHAT_OPENID", "shop-mp"),
        ("WECHAT_UNIONID", "shop-mp"),
    ]
    for app in ("shop-mp", "club-mp"):  # club-mp through the unionid
        login = await gw.login(app, "wx-emma")
        assert login["isNewAccount"] is False
        assert login["account"]["id"] == created["account"]["id"]


@pytest.mark.parametrize(
    ("app", "scope"), [("shop-mp", None), ("news-oa", "snsapi_userinfo")], ids=["openid", "unionid"]
)
async def test_a_wechat_identity_of_another_account_is_a_conflict(
    gw: Harness, app: str, scope: str | None
) -> None:
    """The other account holds the openid, or (news-oa) only the unionid of that code."""
    other = await gw.login("shop-mp", "wx-finn")
    mine = await registered(gw, "finn")
    result = await link(gw, mine["accessToken"], app, "wx-finn", scope=scope)
    assert (result["__typename"], result["code"]) == ("ConflictError", "IDENTITY_CONFLICT")
    assert kinds(await viewer(gw, mine["accessToken"])) == [("USERNAME", "shop-mp")]
    again = await gw.login("shop-mp", "wx-finn")
    assert again["account"]["id"] == other["account"]["id"]
    assert kinds(again["account"]) == [("WECHAT_OPENID", "shop-mp"), ("WECHAT_UNIONID", "shop-mp")]


@pytest.mark.parametrize("older", ["password-account", "official-account-account"])
async def test_a_unionid_proving_two_accounts_one_person_merges_them(
    gw: Harness, older: str
) -> None:
    """A: password + shop-mp (openid and unionid). B: news-oa with snsapi_base (openid only).
    A links news-oa with snsapi_userinfo, which gives openid and unionid: one person."""
    if older == "official-account-account":
        b = await oa_login(gw, "wx-gwen", scope="snsapi_base")
    a = await registered(gw, "gwen")
    linked = await link(gw, a["accessToken"], "shop-mp", "wx-gwen")
    assert linked["merged"] is False, linked
    if older == "password-account":
        b = await oa_login(gw, "wx-gwen", scope="snsapi_base")
    assert b["isNewAccount"] is True
    assert [i["kind"] for i in b["account"]["identities"]] == ["WECHAT_OPENID"]
    survivor, absorbed = (a, b) if older == "password-account" else (b, a)

    result = await link(gw, a["accessToken"], "news-oa", "wx-gwen", scope="snsapi_userinfo")
    assert result["__typename"] == "LinkWechatSuccess", result
    assert result["merged"] is True
    assert result["account"]["id"] == survivor["account"]["id"]
    assert kinds(result["account"]) == [
        ("USERNAME", "shop-mp"),
        ("WECHAT_OPENID", "news-oa"),
        ("WECHAT_OPENID", "shop-mp"),
        ("WECHAT_UNIONID", "shop-mp"),
    ]
    async with gw.app.state.services.db.reader() as s:
        gone = await s.get(Account, account_uuid(absorbed["account"]["id"]))
        merges = (
            (await s.execute(select(AuditEvent).where(col(AuditEvent.kind) == "merge")))
            .scalars()
            .all()
        )
    assert gone is not None
    assert (gone.status, gone.merged_into_id) == ("merged", account_uuid(survivor["account"]["id"]))
    assert len(merges) == 1
    # every door and every earlier token now reaches the one account
    for token in (a["accessToken"], b["accessToken"]):
        assert await viewer_id(gw, token) == survivor["account"]["id"]
    assert (await oa_login(gw, "wx-gwen", scope="snsapi_base"))["account"]["id"] == (
        survivor["account"]["id"]
    )
    assert (await gw.login("club-mp", "wx-gwen"))["account"]["id"] == survivor["account"]["id"]
    assert (await password_login(gw, "gwen"))["account"]["id"] == survivor["account"]["id"]


@pytest.mark.parametrize(
    ("app", "user_extra", "typename", "code"),
    [
        ("no-such-app", {}, "UnknownAppError", "UNKNOWN_APP"),
        ("shop-mp", {"errcode": 40029}, "CodeRejectedError", "INVALID_CODE"),
        ("news-oa", {"snapshot": True}, "SnapshotUserError", "SNAPSHOT_USER"),
        ("news-oa", {"no_state": True}, "InvalidInputError", "INVALID_STATE"),
    ],
)
async def test_link_wechat_typed_failures_change_nothing(
    gw: Harness, app: str, user_extra: dict[str, Any], typename: str, code: str
) -> None:
    created = await registered(gw, "hugo")
    token = created["accessToken"]
    mint = {k: v for k, v in user_extra.items() if k != "no_state"}
    mint_app = "shop-mp" if app == "no-such-app" else app
    wechat_code = await gw.mint(mint_app, "wx-hugo", **mint)
    with_state = app == "news-oa" and "no_state" not in user_extra
    state = await oa_state(gw, scope="snsapi_base") if with_state else None
    variables = {"app": app, "code": wechat_code, "state": state}
    result = (await gql(gw.client, LINK, variables, token))["data"]["linkWechat"]
    assert (result["__typename"], result["code"]) == (typename, code), result
    assert kinds(await viewer(gw, token)) == [("USERNAME", "shop-mp")]


async def test_link_wechat_needs_a_login(gw: Harness) -> None:
    result = await link(gw, None, "shop-mp", "wx-ivan")
    assert (result["__typename"], result["code"]) == ("NotAuthenticatedError", "NOT_LOGGED_IN")
    assert (await gw.login("shop-mp", "wx-ivan"))["isNewAccount"] is True  # nothing was linked


# -- unlinkIdentity ----------------------------------------------------------------------------


async def test_the_last_identity_cannot_be_unlinked(gw: Harness) -> None:
    created = await registered(gw, "jane")
    only = identity_of(created["account"], "USERNAME")
    result = await unlink(gw, created["accessToken"], only)
    assert (result["__typename"], result["code"]) == ("LastIdentityError", "LAST_IDENTITY")
    assert (await password_login(gw, "jane"))["__typename"] == "LoginSuccess"


async def test_unlinking_needs_an_identity_of_your_own(gw: Harness) -> None:
    mine = await registered(gw, "kurt")
    await link(gw, mine["accessToken"], "shop-mp", "wx-kurt")
    other = await gw.login("shop-mp", "wx-someone-else")
    foreign = identity_of(await viewer(gw, other["accessToken"]), "WECHAT_OPENID")
    bogus = base64.b64encode(f"Identity:{uuid.uuid4()}".encode()).decode()
    account_id = base64.b64encode(
        f"Account:{account_uuid(mine['account']['id'])}".encode()
    ).decode()
    for identity_id in (foreign, bogus, account_id, "not-an-id"):
        result = await unlink(gw, mine["accessToken"], identity_id)
        assert (result["__typename"], result["code"]) == ("NotFoundError", "NOT_FOUND"), identity_id
    again = await gw.login("shop-mp", "wx-someone-else")
    assert kinds(again["account"]) == kinds(other["account"])
    assert len((await viewer(gw, mine["accessToken"]))["identities"]) == 3


async def test_unlinking_the_username_makes_the_password_stop_working(gw: Harness) -> None:
    wechat = await gw.login("shop-mp", "wx-lena")
    bound = await bind(gw, wechat["accessToken"], "lena", GOOD_PASSWORD)
    result = await unlink(gw, wechat["accessToken"], identity_of(bound["account"], "USERNAME"))
    assert result["__typename"] == "AccountResult", result
    assert kinds(result["account"]) == [("WECHAT_OPENID", "shop-mp"), ("WECHAT_UNIONID", "shop-mp")]
    assert (await password_login(gw, "lena"))["code"] == "INVALID_CREDENTIALS"
    assert await viewer_id(gw, wechat["accessToken"]) == wechat["account"]["id"]
    async with gw.app.state.services.db.reader() as s:
        assert (await s.execute(text("SELECT count(*) FROM credentials"))).scalar_one() == 0


async def test_concurrent_unlinks_never_remove_the_last_identity(gw: Harness) -> None:
    wechat = await gw.login("solo-mp", "wx-mona")  # no platform: one openid only
    bound = await bind(gw, wechat["accessToken"], "mona", GOOD_PASSWORD)
    ids = [i["id"] for i in bound["account"]["identities"]]
    assert len(ids) == 2
    results = await asyncio.gather(*(unlink(gw, wechat["accessToken"], i) for i in ids))
    assert sorted(r["__typename"] for r in results) == ["AccountResult", "LastIdentityError"]
    assert len((await viewer(gw, wechat["accessToken"]))["identities"]) == 1


# -- viewer.sessions and revokeSession ---------------------------------------------------------

ANDROID = {"platform": "android", "channel": "huawei-store", "deviceParam": "model=P60;os=12"}
IPHONE = {"platform": "ios", "channel": "app-store", "deviceParam": "model=iPhone15,2"}


async def two_sessions(gw: Harness, username: str) -> tuple[dict[str, Any], dict[str, Any]]:
    await registered(gw, username)
    async with from_ip(gw, "203.0.113.21") as phone, from_ip(gw, "203.0.113.22") as tablet:
        first = await password_login(gw, username, client=ANDROID, http=phone)
        second = await password_login(gw, username, client=IPHONE, http=tablet)
    return first, second


async def sessions(gw: Harness, token: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await gql(gw.client, SESSIONS, {}, token))["data"]["viewer"][
        "sessions"
    ]
    return found


async def test_viewer_sessions_list_the_client_facts_and_mark_the_current_one(
    gw: Harness,
) -> None:
    first, second = await two_sessions(gw, "nora")
    listed = await sessions(gw, first["accessToken"])
    assert len(listed) == 3  # the registration's session too
    by_ip = {s["ip"]: s for s in listed}
    assert [s["current"] for s in listed].count(True) == 1
    assert by_ip["203.0.113.21"]["current"] is True
    facts = {k: by_ip["203.0.113.21"][k] for k in ("platform", "channel", "deviceParam")}
    assert facts == ANDROID
    assert by_ip["203.0.113.22"]["current"] is False
    assert by_ip["203.0.113.22"]["platform"] == "ios"
    assert by_ip["203.0.113.22"]["deviceParam"] == IPHONE["deviceParam"]
    assert {s["app"]["key"] for s in listed} == {"shop-mp"}
    assert all(s["userAgent"].startswith("python-httpx/") for s in listed)
    assert all(s["createdAt"] <= s["lastUsedAt"] < s["expiresAt"] for s in listed)
    mine = {s["id"] for s in listed}
    assert {s["id"] for s in await sessions(gw, second["accessToken"])} == mine
    other = await registered(gw, "nora2")
    assert not mine & {s["id"] for s in await sessions(gw, other["accessToken"])}


async def test_revoke_session_kills_another_session_of_the_account(gw: Harness) -> None:
    first, second = await two_sessions(gw, "olive")
    (target,) = [s for s in await sessions(gw, first["accessToken"]) if s["ip"] == "203.0.113.22"]
    body = await gql(gw.client, REVOKE, {"id": target["id"]}, first["accessToken"])
    assert body["data"]["revokeSession"] == {"__typename": "RevokeSessionSuccess", "revoked": True}
    assert await viewer_id(gw, second["accessToken"]) is None
    assert await viewer_id(gw, first["accessToken"]) == first["account"]["id"]
    assert target["id"] not in {s["id"] for s in await sessions(gw, first["accessToken"])}
    again = await gql(gw.client, REVOKE, {"id": target["id"]}, first["accessToken"])
    assert again["data"]["revokeSession"]["code"] == "NOT_FOUND"


async def test_revoke_session_refuses_ids_that_are_not_your_sessions(gw: Harness) -> None:
    mine = await registered(gw, "pia")
    other = await registered(gw, "pia2")
    (foreign,) = await sessions(gw, other["accessToken"])
    for session_id in (
        foreign["id"],
        base64.b64encode(f"LoginSessionInfo:{uuid.uuid4()}".encode()).decode(),
        "bogus",
    ):
        body = await gql(gw.client, REVOKE, {"id": session_id}, mine["accessToken"])
        result = body["data"]["revokeSession"]
        assert (result["__typename"], result["code"]) == ("NotFoundError", "NOT_FOUND")
    assert await viewer_id(gw, other["accessToken"]) == other["account"]["id"]
    anonymous = (await gql(gw.client, REVOKE, {"id": foreign["id"]}))["data"]["revokeSession"]
    assert anonymous["code"] == "NOT_LOGGED_IN"


# -- audit -------------------------------------------------------------------------------------

AUDIT_IP = "198.51.100.23"
AUDIT_CLIENT = {"platform": "harmony", "channel": "appgallery", "deviceParam": "model=Mate60"}


async def audit_events(gw: Harness) -> list[AuditEvent]:
    async with gw.app.state.services.db.reader() as s:
        query = select(AuditEvent).order_by(col(AuditEvent.created_at))
        return list((await s.execute(query)).scalars().all())


async def everything_stored(gw: Harness) -> str:
    """Every row of every table, as text."""
    rows: list[str] = []
    async with gw.app.state.services.db.reader() as s:
        for table in SQLModel.metadata.sorted_tables:
            rows += [repr(tuple(r)) for r in await s.execute(table.select())]
    return "\n".join(rows)


async def test_every_credential_action_is_audited_with_client_facts_and_no_secret(
    gw: Harness,
) -> None:
    old, new, wrong = "Audit-old-Passw0rd", "Audit-new-Passw0rd", "Audit-wrong-Passw0rd"
    tokens: list[str] = []
    async with from_ip(gw, AUDIT_IP) as http:
        created = await register(gw, "quinn", old, client=AUDIT_CLIENT, http=http)
        login = await password_login(gw, "quinn", old, client=AUDIT_CLIENT, http=http)
        failed = await password_login(gw, "quinn", wrong, client=AUDIT_CLIENT, http=http)
        assert failed["code"] == "INVALID_CREDENTIALS"
        token = login["accessToken"]
        variables: dict[str, Any] = {"current": old, "new": new, "client": AUDIT_CLIENT}
        changed = await gql(http, CHANGE_PASSWORD, variables, token)
        assert changed["data"]["changePassword"]["revokedSessions"] == 1
        code = await gw.mint("shop-mp", "wx-quinn")
        variables = {"app": "shop-mp", "code": code, "state": None, "client": AUDIT_CLIENT}
        linked = (await gql(http, LINK, variables, token))["data"]["linkWechat"]
        openid = identity_of(linked["account"], "WECHAT_OPENID")
        unlinked = await gql(http, UNLINK, {"id": openid, "client": AUDIT_CLIENT}, token)
        assert unlinked["data"]["unlinkIdentity"]["__typename"] == "AccountResult"
        logout = await gql(
            http,
            "mutation($c: ClientInput) { logout(client: $c) { __typename } }",
            {"c": AUDIT_CLIENT},
            token,
        )
        assert logout["data"]["logout"]["__typename"] == "LogoutSuccess"
        tokens += [created["accessToken"], created["refreshToken"], token, login["refreshToken"]]

    events = await audit_events(gw)
    account = account_uuid(created["account"]["id"])
    expected = ["register", "login", "login_failed", "password_change", "link", "unlink", "logout"]
    for kind in expected:
        mine = [e for e in events if e.kind == kind]
        assert mine, kind
        assert all(
            (e.platform, e.ip, e.channel) == ("harmony", AUDIT_IP, "appgallery") for e in mine
        )
        if kind != "login_failed":
            assert {e.account_id for e in mine} == {account}, kind
    (failure,) = [e for e in events if e.kind == "login_failed"]
    assert failure.detail["reason"] == "INVALID_CREDENTIALS"

    stored = await everything_stored(gw)
    assert "quinn" in stored  # the dump does hold what was stored
    for secret in (old, new, wrong, *tokens):
        assert secret not in stored


async def test_a_failed_login_of_a_known_username_is_audited_with_the_account(
    gw: Harness,
) -> None:
    created = await registered(gw, "rita")
    assert (await password_login(gw, "rita", "Not-her-Passw0rd"))["code"] == "INVALID_CREDENTIALS"
    (failure,) = [e for e in await audit_events(gw) if e.kind == "login_failed"]
    assert failure.account_id == account_uuid(created["account"]["id"])


async def test_change_password_after_a_merge_of_two_password_accounts_retires_both(
    gw: Harness,
) -> None:
    a = await registered(gw, "uma", "first-Secret-11")
    await link(gw, a["accessToken"], "shop-mp", "wx-uma")
    b = await registered(gw, "vic", "second-Secret-22")
    await link(gw, b["accessToken"], "news-oa", "wx-uma", scope="snsapi_base")
    merged = await link(gw, a["accessToken"], "news-oa", "wx-uma", scope="snsapi_userinfo")
    assert merged["merged"] is True, merged
    assert [kind for kind, _ in kinds(merged["account"])].count("USERNAME") == 2

    result = await change_password(gw, a["accessToken"], "first-Secret-11", "brand-New-pw-77")
    assert result["__typename"] == "ChangePasswordSuccess", result
    for username, old in (("uma", "first-Secret-11"), ("vic", "second-Secret-22")):
        stale = await password_login(gw, username, old)
        assert stale["__typename"] == "InvalidCredentialsError", (username, stale["__typename"])
        login = await password_login(gw, username, "brand-New-pw-77")
        assert login["account"]["id"] == merged["account"]["id"], username
