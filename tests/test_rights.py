"""People's rights over HTTP: deleteAccount (each way to re-authenticate, each refusal, the
cooling-off period cancelled by a login or carried out after it), what deletion erases and
keeps, disable/enable, and the personalData document. Time is injected by moving
``deletion_due_at`` in the database, never by waiting."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from gateway.accounts.tables import Account, Identity, UsernameReservation, WechatSession
from gateway.rights import service as rights_service
from gateway.rights.service import purge_periodically
from gateway.store.models import AuditEvent, LoginSession, RefreshToken, utcnow
from tests.support.accounts import account_uuid, count, oa_login, two_accounts_of_dave
from tests.support.harness import Configure, Harness, running
from tests.support.partners import (
    LOOKUP_BY_ID,
    global_id,
    partner_config,
    partner_token,
    partners_toml,
)
from tests.support.passwords import GOOD_PASSWORD, password_login, registered
from tests.support.rights import delete, login

REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) { __typename
  ... on Error { code } } }"""
EXPORT = """personalData { __typename ... on PersonalData { document }
  ... on RateLimitedError { code retryAfterSeconds } ... on Error { code message } }"""
PERSONAL = f"{{ viewer {{ id {EXPORT} }} }}"
BY_OPENID = """query($openid: String!) { partner { ... on PartnerQuery {
  accountByOpenid(app: "shop-mp", openid: $openid) { __typename ... on AccountLookup { found } }
} } }"""
BY_USERNAME = """query($u: String!) { partner { ... on PartnerQuery {
  accountByUsername(username: $u) { __typename ... on AccountLookup { found } } } } }"""


@pytest.fixture
async def make_gw(database_url: str, configure: Configure, tmp_path: Path) -> AsyncIterator[Any]:
    """``make_gw(**accounts)``: a running gateway with an ``[accounts]`` table and the
    ``support`` partner (shop-mp, usernames, phones)."""
    started: list[Any] = []

    async def make(**accounts: Any) -> Harness:
        base = configure(database_url)
        toml = partners_toml(["support"]) + "\n[accounts]\n"
        toml += "".join(f"{k} = {v!r}\n" for k, v in accounts.items())
        context = running(partner_config(base, tmp_path, toml))
        started.append(context)
        return await context.__aenter__()

    yield make
    for context in reversed(started):
        await context.__aexit__(None, None, None)


async def events(gw: Harness, account_id: uuid.UUID) -> list[AuditEvent]:
    async with gw.app.state.services.db.reader() as s:
        query = select(AuditEvent).where(col(AuditEvent.account_id) == account_id)
        return list((await s.execute(query)).scalars().all())


async def found_by_partner(gw: Harness, openid: str, account_id: uuid.UUID) -> list[bool]:
    token = await partner_token(gw, "support")
    by_openid = await gw.gql(BY_OPENID, {"openid": openid}, token=token)
    by_id = await gw.gql(LOOKUP_BY_ID, {"id": global_id("Account", account_id)}, token=token)
    return [
        by_openid["data"]["partner"]["accountByOpenid"]["found"],
        by_id["data"]["partner"]["account"]["found"],
    ]


# -- deletion at once ----------------------------------------------------------------------


async def test_a_recent_login_deletes_at_once_and_erases_the_person(make_gw: Any) -> None:
    gw = await make_gw(deletion_grace_days=0)
    first = await login(gw, "alice")
    old = account_uuid(first["account"]["id"])
    ids = await gw.wechat_ids("shop-mp", "alice")
    assert await found_by_partner(gw, str(ids["openid"]), old) == [True, True]

    done = await delete(gw, first["accessToken"])
    assert done["__typename"] == "DeleteAccountSuccess"
    assert done["pending"] is False
    assert done["deletedAt"] == done["effectiveAt"]

    # old tokens are refused, the refresh token too
    assert await gw.refused(PERSONAL, token=first["accessToken"]) == "INVALID_TOKEN"
    refreshed = await gw.gql(REFRESH, {"t": first["refreshToken"]})
    assert refreshed["data"]["refreshToken"]["code"] == "INVALID_REFRESH_TOKEN"
    # identities, sealed keys, sessions and refresh tokens are gone; the row is a pseudonym
    assert await count(gw, Identity, col(Identity.account_id) == old) == 0
    assert await count(gw, WechatSession, col(WechatSession.openid) == ids["openid"]) == 0
    assert await count(gw, LoginSession, col(LoginSession.account_id) == old) == 0
    assert await count(gw, RefreshToken) == 0
    async with gw.app.state.services.db.reader() as s:
        row = await s.get(Account, old)
    assert row is not None
    assert (row.status, row.nickname, row.avatar_url) == ("deleted", None, None)
    assert row.deleted_at is not None
    # audit events stay, without personal fields
    kept = await events(gw, old)
    assert {"login", "register", "deletion_requested", "account_deleted"} & {
        e.kind for e in kept
    } >= {"deletion_requested", "account_deleted"}
    for event in kept:
        assert (event.ip, event.user_agent, event.device_param, event.platform) == (None,) * 4
        assert event.channel is None
    # partners find nothing; the same WeChat person gets a new account
    assert await found_by_partner(gw, str(ids["openid"]), old) == [False, False]
    again = await login(gw, "alice")
    assert again["isNewAccount"] is True
    assert account_uuid(again["account"]["id"]) != old


async def test_accounts_merged_into_a_deleted_one_follow_it(make_gw: Any) -> None:
    gw = await make_gw(deletion_grace_days=0)
    oa, shop = await two_accounts_of_dave(gw, oa_first=True)
    merged = await oa_login(gw, "dave", scope="snsapi_userinfo")  # the unionid: one person
    assert merged["account"]["id"] == oa["account"]["id"]
    absorbed = account_uuid(shop["account"]["id"])
    assert (await delete(gw, merged["accessToken"]))["__typename"] == "DeleteAccountSuccess"
    token = await partner_token(gw, "support")
    by_id = await gw.gql(LOOKUP_BY_ID, {"id": global_id("Account", absorbed)}, token=token)
    assert by_id["data"]["partner"]["account"]["found"] is False
    assert await gw.refused(PERSONAL, token=shop["accessToken"]) == "INVALID_TOKEN"
    async with gw.app.state.services.db.reader() as s:
        row = await s.get(Account, absorbed)
    assert row is not None
    assert (row.status, row.nickname, row.deleted_at is not None) == ("merged", None, True)


async def test_deletion_is_at_once_on_every_replica(make_gw: Any) -> None:
    """Two gateways on one database (two replicas): a deletion on one refuses the token on
    the other at its next request."""
    one, two = await make_gw(deletion_grace_days=0), await make_gw(deletion_grace_days=0)
    first = await login(one, "erin")
    assert (await two.gql(PERSONAL, token=first["accessToken"]))["data"]["viewer"]
    assert (await delete(one, first["accessToken"]))["__typename"] == "DeleteAccountSuccess"
    assert await two.refused(PERSONAL, token=first["accessToken"]) == "INVALID_TOKEN"


# -- re-authentication ---------------------------------------------------------------------


async def test_without_a_recent_login_a_proof_is_required(make_gw: Any) -> None:
    gw = await make_gw(reauthentication_seconds=0, deletion_grace_days=0)
    first = await login(gw, "bob")
    refused = await delete(gw, first["accessToken"])
    assert refused["code"] == "REAUTHENTICATION_REQUIRED"
    wrong = await delete(gw, first["accessToken"], password="not-my-password-1")
    assert wrong["code"] == "INVALID_CREDENTIALS"  # he has no password at all
    half = await delete(gw, first["accessToken"], app="club-mp")
    assert half["code"] == "INVALID_INPUT"
    # a fresh code of someone else is no proof
    other = await gw.mint("club-mp", "mallory")
    assert (await delete(gw, first["accessToken"], app="club-mp", code=other))[
        "code"
    ] == "INVALID_CREDENTIALS"
    assert (await delete(gw, None))["code"] == "NOT_LOGGED_IN"
    # a fresh code from another of his apps (same person by unionid) is
    code = await gw.mint("club-mp", "bob")
    done = await delete(gw, first["accessToken"], app="club-mp", code=code)
    assert done["__typename"] == "DeleteAccountSuccess"


async def test_the_password_re_authenticates_and_the_username_stays_reserved(
    make_gw: Any,
) -> None:
    gw = await make_gw(reauthentication_seconds=0, deletion_grace_days=0)
    carol = await registered(gw, "carol-r")
    wrong = await delete(gw, carol["accessToken"], password="wrong-Password-99")
    assert wrong["code"] == "INVALID_CREDENTIALS"
    done = await delete(gw, carol["accessToken"], password=GOOD_PASSWORD)
    assert done["__typename"] == "DeleteAccountSuccess"
    assert (await password_login(gw, "carol-r"))["code"] == "INVALID_CREDENTIALS"
    token = await partner_token(gw, "support")
    found = await gw.gql(BY_USERNAME, {"u": "carol-r"}, token=token)
    assert found["data"]["partner"]["accountByUsername"]["found"] is False
    # the name is reserved (by its hash only), then free again
    from tests.support.passwords import register

    assert (await register(gw, "carol-r"))["code"] == "USERNAME_TAKEN"
    async with gw.app.state.services.db.transaction() as s:
        (reservation,) = (await s.execute(select(UsernameReservation))).scalars().all()
        assert "carol" not in reservation.digest
        reservation.until = utcnow() - timedelta(seconds=1)
    assert (await register(gw, "carol-r"))["__typename"] == "LoginSuccess"


# -- the cooling-off period ----------------------------------------------------------------


async def test_a_login_during_the_grace_period_cancels_the_deletion(make_gw: Any) -> None:
    gw = await make_gw(deletion_grace_days=7)
    first = await login(gw, "frank")
    account = account_uuid(first["account"]["id"])
    done = await delete(gw, first["accessToken"])
    assert done["pending"] is True
    assert done["effectiveAt"] > done["deletedAt"]
    assert await gw.refused(PERSONAL, token=first["accessToken"]) == "INVALID_TOKEN"

    again = await login(gw, "frank")
    assert again["isNewAccount"] is False
    assert again["deletionCancelled"] is True
    assert account_uuid(again["account"]["id"]) == account
    assert "deletion_cancelled" in {e.kind for e in await events(gw, account)}
    # due or not, nothing is carried out any more
    await _make_due(gw, account)
    assert await gw.app.state.api.rights.carry_out_due() == 0
    third = await login(gw, "frank")
    assert (third["isNewAccount"], third["deletionCancelled"]) == (False, False)


async def test_after_the_grace_period_the_deletion_is_carried_out(make_gw: Any) -> None:
    gw = await make_gw(deletion_grace_days=7)
    first = await login(gw, "gina")
    account = account_uuid(first["account"]["id"])
    await delete(gw, first["accessToken"])
    assert await gw.app.state.api.rights.carry_out_due() == 0  # not yet
    await _make_due(gw, account)
    assert await gw.app.state.api.rights.carry_out_due() == 1
    async with gw.app.state.services.db.reader() as s:
        row = await s.get(Account, account)
    assert row is not None
    assert row.status == "deleted"
    again = await login(gw, "gina")
    assert (again["isNewAccount"], again["deletionCancelled"]) == (True, False)


async def _make_due(gw: Harness, account: uuid.UUID) -> None:
    async with gw.app.state.services.db.transaction() as s:
        await s.execute(
            update(Account)
            .where(col(Account.id) == account, col(Account.deletion_due_at).is_not(None))
            .values(deletion_due_at=utcnow() - timedelta(seconds=1))
        )


async def test_the_periodic_task_carries_out_due_deletions_until_cancelled() -> None:
    rounds: list[float] = []

    class Rights:
        async def carry_out_due(self) -> int:
            if len(rounds) == 2:
                raise RuntimeError("database down")  # logged; the next round goes on
            return 1

    async def sleep(interval: float) -> None:
        rounds.append(interval)
        if len(rounds) == 4:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await purge_periodically(Rights(), 5.0, sleep)  # type: ignore[arg-type]
    assert rounds == [5.0] * 4


async def test_the_app_runs_the_purge_task_and_stops_it_on_shutdown(
    database_url: str, configure: Configure
) -> None:
    async with running(configure(database_url, accounts={"purge_interval_seconds": 60})) as gw:
        task = gw.app.state.purge_task
        assert not task.done()
    assert task.cancelled()


# -- disable / enable ----------------------------------------------------------------------


async def test_a_disabled_account_is_refused_at_once_and_enabled_again(make_gw: Any) -> None:
    from gateway.rights.service import Operator

    gw = await make_gw()
    henry = await registered(gw, "henry-d")
    wechat = await login(gw, "henry")
    rights = gw.app.state.api.rights
    account = account_uuid(henry["account"]["id"])
    revoked = await rights.set_disabled(account, True, Operator("ops", "fraud report"))
    assert revoked == 1
    assert await gw.refused(PERSONAL, token=henry["accessToken"]) == "INVALID_TOKEN"
    assert (await password_login(gw, "henry-d"))["code"] == "ACCOUNT_DISABLED"
    assert (await password_login(gw, "henry-d", "wrong-Password-99"))[
        "code"
    ] == "INVALID_CREDENTIALS"  # the state shows only to who knows the password
    await rights.set_disabled(account_uuid(wechat["account"]["id"]), True, Operator("ops", "x"))
    assert (await login(gw, "henry"))["code"] == "ACCOUNT_DISABLED"

    await rights.set_disabled(account, False, Operator("ops", "cleared"))
    assert (await password_login(gw, "henry-d"))["__typename"] == "LoginSuccess"
    assert await gw.refused(PERSONAL, token=henry["accessToken"]) == "INVALID_TOKEN"
    kinds = [(e.kind, e.detail.get("reason")) for e in await events(gw, account)]
    assert ("account_disabled", "fraud report") in kinds
    assert ("account_enabled", "cleared") in kinds


# -- personal data -------------------------------------------------------------------------


async def test_personal_data_holds_the_person_and_nothing_sealed(make_gw: Any) -> None:
    gw = await make_gw()
    ivy = await login(gw, "ivy")
    bind = """mutation($p: String!) { bindCredential(input: {username: "ivy-p", password: $p})
      { __typename } }"""
    assert (await gw.gql(bind, {"p": GOOD_PASSWORD}, token=ivy["accessToken"]))["data"][
        "bindCredential"
    ]["__typename"] == "AccountResult"
    other = await login(gw, "jack")
    body = await gw.gql(PERSONAL, token=ivy["accessToken"])
    document = body["data"]["viewer"]["personalData"]["document"]
    assert document["truncated"] == {"sessions": False, "auditEvents": False}
    account = account_uuid(ivy["account"]["id"])
    assert document["account"]["id"] == str(account)
    kinds = sorted(i["kind"] for i in document["identities"])
    assert kinds == ["username", "wechat_openid", "wechat_unionid"]
    assert {"key": "shop-mp", "name": "Shop"} in [i["app"] for i in document["identities"]]
    assert "ivy-p" in [i.get("username") for i in document["identities"]]
    assert document["sessions"][0]["platform"] == "ios"
    assert {"register", "bind_credential"} <= {e["kind"] for e in document["auditEvents"]}
    assert all(e["account"] == str(account) for e in document["auditEvents"])

    text = json.dumps(document)
    ids = await gw.wechat_ids("shop-mp", "ivy")
    for secret in (ids["openid"], ids["unionid"], ids["session_key"], ivy["refreshToken"]):
        assert secret
        assert secret not in text
    assert "argon2" not in text
    assert str(account_uuid(other["account"]["id"])) not in text
    async with gw.app.state.services.db.reader() as s:
        hashes = (await s.execute(select(col(RefreshToken.token_hash)))).scalars().all()
        sealed = (await s.execute(select(col(WechatSession.session_key_sealed)))).scalars().all()
    assert not [h for h in [*hashes, *sealed] if h in text]
    # nobody else's account: anonymous viewers get none
    assert (await gw.gql(PERSONAL))["data"]["viewer"] is None


async def test_personal_data_is_served_once_per_request(make_gw: Any) -> None:
    """Aliases cannot multiply the export: one is served, every other is a typed refusal."""
    gw = await make_gw()
    kim = await login(gw, "kim")
    twice = f"{{ a: viewer {{ {EXPORT} }} b: viewer {{ {EXPORT} }} c: viewer {{ {EXPORT} }} }}"
    body = await gw.gql(twice, token=kim["accessToken"])
    assert "errors" not in body, body
    answers = [body["data"][k]["personalData"] for k in "abc"]
    assert sorted(a["__typename"] for a in answers) == [
        "PersonalData",
        "TooExpensiveError",
        "TooExpensiveError",
    ]
    assert {a.get("code") for a in answers} == {None, "TOO_EXPENSIVE"}


async def test_personal_data_is_served_once_per_account_per_minute(make_gw: Any) -> None:
    gw = await make_gw()
    lea, max_ = await login(gw, "lea"), await login(gw, "max")
    first = (await gw.gql(PERSONAL, token=lea["accessToken"]))["data"]["viewer"]
    assert first["personalData"]["__typename"] == "PersonalData"
    again = (await gw.gql(PERSONAL, token=lea["accessToken"]))["data"]["viewer"]
    assert again["personalData"]["code"] == "RATE_LIMITED"
    assert 0 < again["personalData"]["retryAfterSeconds"] <= 60
    other = (await gw.gql(PERSONAL, token=max_["accessToken"]))["data"]["viewer"]
    assert other["personalData"]["__typename"] == "PersonalData"  # per account, not global
    open_gw = await make_gw(personal_data_interval_seconds=0)  # 0: no limit
    ned = await login(open_gw, "ned")
    for _ in range(2):
        body = await open_gw.gql(PERSONAL, token=ned["accessToken"])
        assert body["data"]["viewer"]["personalData"]["__typename"] == "PersonalData"


async def test_personal_data_export_is_bounded(make_gw: Any, monkeypatch: Any) -> None:
    """The newest sessions and events only, and the document says it was cut."""
    monkeypatch.setattr(rights_service, "SESSIONS_IN_EXPORT", 2)
    monkeypatch.setattr(rights_service, "EVENTS_IN_EXPORT", 2)
    gw = await make_gw()
    for _ in range(3):
        olga = await login(gw, "olga")
    body = await gw.gql(PERSONAL, token=olga["accessToken"])
    document = body["data"]["viewer"]["personalData"]["document"]
    assert (len(document["sessions"]), len(document["auditEvents"])) == (2, 2)
    assert document["truncated"] == {"sessions": True, "auditEvents": True}
