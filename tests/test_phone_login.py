"""loginByPhoneCode over HTTP: the one-tap phone login of a shop's first screen.

The caller is the silent login's account; a free phone joins it and the answer is a login that
replaces the silent session; a phone on another account is PHONE_CONFLICT and the caller stays
exactly where it was (numbers are recycled: never a move or a merge); binding needs a recent
login, like bindPhoneNumber, and a refusal for that leaves the phone code usable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from gateway.store.models import AccountEventRow, AuditEvent, LoginSession, utcnow
from tests.support.accounts import account_uuid, count, identities_in_db, merge_events
from tests.support.harness import Configure, Harness, running

PHONE_LOGIN = """
mutation($app: String!, $code: String!) {
  loginByPhoneCode(input: {app: $app, code: $code, client: {platform: "ios"}}) {
    __typename
    ... on LoginSuccess {
      accessToken refreshToken isNewAccount account { id identities { kind label } }
    }
    ... on Error { code message }
    ... on InvalidInputError { field }
  }
}
"""
REFRESH = """mutation($token: String!) { refreshToken(refreshToken: $token) { __typename
  ... on Error { code } } }"""
PHONE_PATH = "/wxa/business/getuserphonenumber"


async def phone_code(gw: Harness, app: str, user: str, phone: str) -> str:
    answer = await gw.upstream.post(
        "/sandbox/phone-codes", json={"appid": gw.appid(app), "user": user, "phone": phone}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["code"])


async def phone_login(gw: Harness, token: str | None, code: str, app: str = "shop-mp") -> Any:
    body = await gw.gql(PHONE_LOGIN, {"app": app, "code": code}, token=token)
    assert "errors" not in body, body
    return body["data"]["loginByPhoneCode"]


async def audited(gw: Harness, account: str, kind: str) -> list[dict[str, Any]]:
    query = select(AuditEvent).where(
        col(AuditEvent.account_id) == account_uuid(account), col(AuditEvent.kind) == kind
    )
    async with gw.app.state.services.db.reader() as s:
        return [dict(e.detail) for e in (await s.execute(query)).scalars().all()]


def phones(account: dict[str, Any]) -> list[str]:
    return [i["label"] for i in account["identities"] if i["kind"] == "PHONE"]


async def test_a_free_phone_joins_the_silent_account_and_the_login_replaces_its_session(
    gw: Harness,
) -> None:
    silent = await gw.login("shop-mp", "amy")
    code = await phone_code(gw, "shop-mp", "amy", "13800138000")

    result = await phone_login(gw, silent["accessToken"], code)

    assert result["__typename"] == "LoginSuccess", result
    assert result["isNewAccount"] is True  # the phone was bound now: the sign-up
    assert result["account"]["id"] == silent["account"]["id"]
    (label,) = phones(result["account"])
    assert label.endswith("8000")
    assert "800138" not in label
    assert await gw.viewer_id(result["accessToken"]) == silent["account"]["id"]
    # the silent session is over: its access token and its refresh token are refused
    assert await gw.viewer_id(silent["accessToken"]) is None
    body = await gw.gql(REFRESH, {"token": silent["refreshToken"]})
    assert body["data"]["refreshToken"]["__typename"] == "RefreshTokenError"
    (bound,) = await audited(gw, silent["account"]["id"], "bind_phone")
    assert (bound["linked"], bound["reauthenticated"]) == (True, "recent_login")
    logins = await audited(gw, silent["account"]["id"], "login")
    assert [e.get("door") for e in logins].count("phone") == 1
    # the account graph announced it, as for bindPhoneNumber
    bound_events = col(AccountEventRow.type) == "phone.bound"
    assert await count(gw, AccountEventRow, bound_events) == 1


async def test_a_phone_already_the_callers_is_a_login_not_a_sign_up(gw: Harness) -> None:
    silent = await gw.login("shop-mp", "bea")
    first = await phone_login(
        gw, silent["accessToken"], await phone_code(gw, "shop-mp", "bea", "13900000002")
    )
    again = await phone_login(
        gw, first["accessToken"], await phone_code(gw, "shop-mp", "bea", "13900000002")
    )
    assert (again["__typename"], again["isNewAccount"]) == ("LoginSuccess", False)
    assert again["account"]["id"] == silent["account"]["id"]
    assert len(phones(again["account"])) == 1


async def test_a_phone_on_another_account_is_a_conflict_and_the_caller_stays(
    gw: Harness,
) -> None:
    jo = await gw.login("shop-mp", "jo")
    owned = await phone_login(
        gw, jo["accessToken"], await phone_code(gw, "shop-mp", "jo", "13700000001")
    )
    assert owned["__typename"] == "LoginSuccess"
    kim = await gw.login("shop-mp", "kim")
    kim_id = account_uuid(kim["account"]["id"])
    sessions_before = await count(gw, LoginSession, col(LoginSession.account_id) == kim_id)
    identities_before = {(i.kind, i.subject, i.account_id) for i in await identities_in_db(gw)}

    refused = await phone_login(
        gw, kim["accessToken"], await phone_code(gw, "shop-mp", "kim", "13700000001")
    )

    assert (refused["__typename"], refused["code"]) == ("ConflictError", "PHONE_CONFLICT")
    assert "13700000001" not in refused["message"]
    # kim is where she was: same account, same live session, no phone; jo keeps his
    assert await gw.viewer_id(kim["accessToken"]) == kim["account"]["id"]
    assert await count(gw, LoginSession, col(LoginSession.account_id) == kim_id) == sessions_before
    assert {(i.kind, i.subject, i.account_id) for i in await identities_in_db(gw)} == (
        identities_before
    )
    assert await merge_events(gw) == []
    assert await audited(gw, kim["account"]["id"], "bind_phone") == []


@pytest.fixture
async def make_gw(database_url: str, configure: Configure) -> AsyncIterator[Any]:
    async with AsyncExitStack() as stack:

        async def make(**accounts: Any) -> Harness:
            config = configure(database_url, accounts=accounts)
            return await stack.enter_async_context(running(config))

        yield make


async def test_an_old_login_logs_in_again_and_the_code_still_works(make_gw: Any) -> None:
    gw = await make_gw(reauthentication_seconds=300)
    silent = await gw.login("shop-mp", "cy")
    async with gw.app.state.services.db.transaction() as s:
        old = utcnow() - timedelta(minutes=10)
        mine = col(LoginSession.account_id) == account_uuid(silent["account"]["id"])
        await s.execute(update(LoginSession).where(mine).values(created_at=old))
    replica = await make_gw(reauthentication_seconds=300)  # no cached view of the session
    code = await phone_code(replica, "shop-mp", "cy", "13600000003")
    calls = await replica.upstream_calls(PHONE_PATH)

    refused = await phone_login(replica, silent["accessToken"], code)
    assert refused["code"] == "REAUTHENTICATION_REQUIRED"
    assert await replica.upstream_calls(PHONE_PATH) == calls  # asked before WeChat
    # the client logs in silently again and sends the same code
    fresh = await replica.login("shop-mp", "cy")
    result = await phone_login(replica, fresh["accessToken"], code)
    assert (result["__typename"], result["isNewAccount"]) == ("LoginSuccess", True)
    assert result["account"]["id"] == silent["account"]["id"]


async def test_refusals_before_any_phone_is_read(gw: Harness) -> None:
    code = await phone_code(gw, "shop-mp", "dan", "13500000004")
    anonymous = await phone_login(gw, None, code)
    assert (anonymous["__typename"], anonymous["code"]) == (
        "NotAuthenticatedError",
        "NOT_LOGGED_IN",
    )

    club = await gw.login("club-mp", "dan")
    other_app = await phone_login(gw, club["accessToken"], code)
    assert (other_app["code"], other_app["field"]) == ("INVALID_INPUT", "app")

    unknown = await phone_login(gw, club["accessToken"], code, app="nope")
    assert unknown["code"] == "UNKNOWN_APP"
    assert await gw.upstream_calls(PHONE_PATH) == 0
    assert [i for i in await identities_in_db(gw) if i.kind == "phone"] == []
