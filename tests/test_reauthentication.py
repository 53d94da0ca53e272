"""Issue 30, defect 1, over HTTP: re-authentication that means something.

Adding a way in (bindCredential, linkWechat, bindPhoneNumber) or removing one (unlinkIdentity)
needs the same re-authentication as deleteAccount (``gateway.rights.reauthentication``): a
recent login or a proof. A factor added by the current session, or less than the window ago,
proves nothing. "A token older than the window" is ``reauthentication_seconds = 0``; time is
moved in the database, never waited for. The cooling-off period is 7 days unless configured
otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from gateway.accounts.tables import Identity
from gateway.config.sections import AccountsModel
from gateway.store.models import AuditEvent, LoginSession, utcnow
from tests.support.accounts import account_uuid
from tests.support.harness import Configure, Harness, running
from tests.support.passwords import GOOD_PASSWORD, password_login, registered

PROOF = "$proof: ReauthenticationInput"
ERROR = "... on Error { code message }"
BIND = f"""mutation($username: String!, $password: String!, {PROOF}) {{
  bindCredential(input: {{username: $username, password: $password, reauthentication: $proof}})
  {{ __typename {ERROR} }} }}"""
LINK = f"""mutation($app: String!, $code: String!, {PROOF}) {{
  linkWechat(input: {{app: $app, code: $code, reauthentication: $proof}})
  {{ __typename ... on LinkWechatSuccess {{ merged }} {ERROR} }} }}"""
PHONE = f"""mutation($code: String!, {PROOF}) {{
  bindPhoneNumber(input: {{code: $code, reauthentication: $proof}})
  {{ __typename ... on BindPhoneNumberSuccess {{ linked }} {ERROR} }} }}"""
DELETE = f"""mutation($input: DeleteAccountInput) {{ deleteAccount(input: $input) {{ __typename
  ... on DeleteAccountSuccess {{ deletedAt effectiveAt pending }} {ERROR} }} }}"""
LOGIN = """mutation($app: String!, $code: String!) {
  loginByCode(input: {app: $app, code: $code, client: {platform: "ios"}}) { __typename
    ... on LoginSuccess { accessToken isNewAccount deletionCancelled account { id } } } }"""
UNLINK = f"""mutation($id: ID!, {PROOF}) {{ unlinkIdentity(id: $id, reauthentication: $proof)
  {{ __typename ... on AccountResult {{ account {{ identities {{ kind }} }} }} {ERROR} }} }}"""
VIEWER = "{ viewer { id identities { kind } } }"
IDENTITY_IDS = "{ viewer { identities { id kind } } }"


@pytest.fixture
async def make_gw(database_url: str, configure: Configure) -> AsyncIterator[Any]:
    """``make_gw(**accounts)``: a running gateway with these ``[accounts]`` settings."""
    async with AsyncExitStack() as stack:

        async def make(**accounts: Any) -> Harness:
            config = configure(database_url, accounts=accounts)
            return await stack.enter_async_context(running(config))

        yield make


async def answer(gw: Harness, document: str, token: str | None, **variables: Any) -> Any:
    body = await gw.gql(document, variables, token=token)
    assert "errors" not in body, body
    (result,) = body["data"].values()
    return result


async def bind(gw: Harness, token: str, username: str, **proof: Any) -> Any:
    variables = {"username": username, "password": GOOD_PASSWORD, "proof": proof or None}
    return await answer(gw, BIND, token, **variables)


async def link(gw: Harness, token: str, app: str, user: str, **proof: Any) -> Any:
    code = await gw.mint(app, user)
    return await answer(gw, LINK, token, app=app, code=code, proof=proof or None)


async def delete(gw: Harness, token: str, **proof: Any) -> Any:
    return await answer(gw, DELETE, token, input=proof or None)


async def alive(gw: Harness, token: str) -> bool:
    return (await gw.gql(VIEWER, token=token))["data"]["viewer"] is not None


async def own_code(gw: Harness, user: str) -> dict[str, str]:
    """A proof: a fresh code of the user's own WeChat, from another app of the platform."""
    return {"app": "club-mp", "code": await gw.mint("club-mp", user)}


async def audited(gw: Harness, account: str, kind: str) -> list[dict[str, Any]]:
    query = select(AuditEvent).where(
        col(AuditEvent.account_id) == account_uuid(account), col(AuditEvent.kind) == kind
    )
    async with gw.app.state.services.db.reader() as s:
        return [dict(e.detail) for e in (await s.execute(query)).scalars().all()]


async def age(gw: Harness, table: Any, where: Any, by: timedelta) -> None:
    """Move ``created_at`` of the matching rows into the past."""
    async with gw.app.state.services.db.transaction() as s:
        await s.execute(update(table).where(where).values(created_at=utcnow() - by))


# -- the defect's two routes, refused --------------------------------------------------------


async def test_an_old_token_cannot_bind_a_password_and_delete_with_it(make_gw: Any) -> None:
    gw = await make_gw(reauthentication_seconds=0, deletion_grace_days=0)
    victim = await gw.login("shop-mp", "victor")
    token = victim["accessToken"]

    refused = await bind(gw, token, "mallory-pw")
    assert refused["code"] == "REAUTHENTICATION_REQUIRED"
    assert (await password_login(gw, "mallory-pw"))["code"] == "INVALID_CREDENTIALS"
    wrong = await delete(gw, token, password=GOOD_PASSWORD)
    assert wrong["code"] == "INVALID_CREDENTIALS"  # no password was set
    assert await alive(gw, token)
    assert await audited(gw, victim["account"]["id"], "bind_credential") == []


async def test_an_old_token_cannot_link_a_wechat_and_delete_with_its_code(make_gw: Any) -> None:
    gw = await make_gw(reauthentication_seconds=0, deletion_grace_days=0)
    victim = await gw.login("shop-mp", "victor")
    token = victim["accessToken"]

    refused = await link(gw, token, "solo-mp", "mallory")
    assert refused["code"] == "REAUTHENTICATION_REQUIRED"
    # the code of her WeChat leads nowhere: no proof
    wrong = await delete(gw, token, app="solo-mp", code=await gw.mint("solo-mp", "mallory"))
    assert wrong["code"] == "INVALID_CREDENTIALS"
    kinds = {i["kind"] for i in (await gw.gql(VIEWER, token=token))["data"]["viewer"]["identities"]}
    assert kinds == {"WECHAT_OPENID", "WECHAT_UNIONID"}  # nothing of hers was linked


async def test_an_old_token_cannot_bind_a_phone_and_the_code_is_not_spent(make_gw: Any) -> None:
    gw = await make_gw(reauthentication_seconds=0)
    victim = await gw.login("shop-mp", "victor")
    token = victim["accessToken"]
    code = await phone_code(gw, "victor", "13800138000")

    refused = await answer(gw, PHONE, token, code=code, proof=None)
    assert refused["code"] == "REAUTHENTICATION_REQUIRED"
    # refused before WeChat is asked: with a proof, the same button's code still works
    proof = await own_code(gw, "victor")
    bound = await answer(gw, PHONE, token, code=code, proof=proof)
    assert (bound["__typename"], bound["linked"]) == ("BindPhoneNumberSuccess", True)
    (event,) = await audited(gw, victim["account"]["id"], "bind_phone")
    assert event["reauthenticated"] == "wechat_code"


async def phone_code(gw: Harness, user: str, phone: str) -> str:
    answered = await gw.upstream.post(
        "/sandbox/phone-codes", json={"appid": gw.appid("shop-mp"), "user": user, "phone": phone}
    )
    assert answered.status_code == 200, answered.text
    return str(answered.json()["code"])


# -- removing a way in ------------------------------------------------------------------------


async def identity_id(gw: Harness, token: str, kind: str) -> str:
    identities = (await gw.gql(IDENTITY_IDS, token=token))["data"]["viewer"]["identities"]
    (found,) = [i["id"] for i in identities if i["kind"] == kind]
    return str(found)


async def unlink(gw: Harness, token: str, identity: str, **proof: Any) -> Any:
    return await answer(gw, UNLINK, token, id=identity, proof=proof or None)


async def test_an_old_token_cannot_unlink_the_owners_way_in(make_gw: Any) -> None:
    """A takeover by subtraction: with the owner's WeChat openid unlinked, the password is the
    account's only way in. Refused before the identity is looked up: an id that is not the
    account's answers the same, so a stale token learns nothing about ids either."""
    gw = await make_gw(reauthentication_seconds=0)
    dora = await registered(gw, "dora-pw")
    token = dora["accessToken"]
    assert (await link(gw, token, "shop-mp", "dora", password=GOOD_PASSWORD))["merged"] is False
    openid = await identity_id(gw, token, "WECHAT_OPENID")

    refused = await unlink(gw, token, openid)
    assert refused["code"] == "REAUTHENTICATION_REQUIRED"
    foreign = await identity_id(
        gw, (await gw.login("shop-mp", "eve"))["accessToken"], "WECHAT_OPENID"
    )
    assert (await unlink(gw, token, foreign))["code"] == "REAUTHENTICATION_REQUIRED"
    wrong = await unlink(gw, token, openid, password="wrong-Password-99")
    assert wrong["code"] == "INVALID_CREDENTIALS"
    assert await audited(gw, dora["account"]["id"], "unlink") == []
    again = await gw.login("shop-mp", "dora")  # her WeChat still leads to her account
    assert again["account"]["id"] == dora["account"]["id"]


async def test_unlinking_with_a_proof_or_after_a_recent_login_is_audited(make_gw: Any) -> None:
    gw = await make_gw(reauthentication_seconds=0)
    fay = await registered(gw, "fay-pw")
    token = fay["accessToken"]
    await link(gw, token, "shop-mp", "fay", password=GOOD_PASSWORD)
    unionid = await identity_id(gw, token, "WECHAT_UNIONID")
    done = await unlink(gw, token, unionid, password=GOOD_PASSWORD)
    kinds = {i["kind"] for i in done["account"]["identities"]}
    assert kinds == {"USERNAME", "WECHAT_OPENID"}
    (event,) = await audited(gw, fay["account"]["id"], "unlink")
    assert event["reauthenticated"] == "password"

    recent = await make_gw(reauthentication_seconds=300)
    fresh = await password_login(recent, "fay-pw")
    openid = await identity_id(recent, fresh["accessToken"], "WECHAT_OPENID")
    assert (await unlink(recent, fresh["accessToken"], openid))["__typename"] == "AccountResult"
    events = await audited(gw, fay["account"]["id"], "unlink")
    assert sorted(e["reauthenticated"] for e in events) == ["password", "recent_login"]


# -- a factor added by this session, or just now, proves nothing ------------------------------


async def test_a_password_bound_by_this_session_is_no_proof_for_it(make_gw: Any) -> None:
    gw = await make_gw(reauthentication_seconds=0, deletion_grace_days=0)
    wendy = await gw.login("shop-mp", "wendy")
    token = wendy["accessToken"]
    bound = await bind(gw, token, "wendy-pw", **await own_code(gw, "wendy"))
    assert bound["__typename"] == "AccountResult"
    (event,) = await audited(gw, wendy["account"]["id"], "bind_credential")
    assert event["reauthenticated"] == "wechat_code"

    too_new = await delete(gw, token, password=GOOD_PASSWORD)
    assert too_new["code"] == "REAUTHENTICATION_REQUIRED"
    assert "added too recently" in too_new["message"]
    assert (await link(gw, token, "solo-mp", "wendy", password=GOOD_PASSWORD))[
        "code"
    ] == "REAUTHENTICATION_REQUIRED"
    # a later login: the password predates that session, and proves it is her
    again = await password_login(gw, "wendy-pw")
    done = await delete(gw, again["accessToken"], password=GOOD_PASSWORD)
    assert (done["__typename"], done["pending"]) == ("DeleteAccountSuccess", False)


async def test_a_wechat_linked_by_this_session_is_no_proof_for_it(make_gw: Any) -> None:
    gw = await make_gw(reauthentication_seconds=0, deletion_grace_days=0)
    xena = await registered(gw, "xena-pw")
    token = xena["accessToken"]
    linked = await link(gw, token, "solo-mp", "xena", password=GOOD_PASSWORD)
    assert linked["__typename"] == "LinkWechatSuccess", linked
    (event,) = await audited(gw, xena["account"]["id"], "link")
    assert event["reauthenticated"] == "password"

    its_code = {"app": "solo-mp", "code": await gw.mint("solo-mp", "xena")}
    assert (await delete(gw, token, **its_code))["code"] == "REAUTHENTICATION_REQUIRED"
    # the password she had before this session still is a proof
    done = await delete(gw, token, password=GOOD_PASSWORD)
    assert done["__typename"] == "DeleteAccountSuccess"


async def test_a_factor_younger_than_the_window_is_no_proof(make_gw: Any) -> None:
    """Bound in one session, used from another that is past the window itself: refused while
    the password is younger than the window, accepted once it is older."""
    gw = await make_gw(reauthentication_seconds=300)
    yuri = await gw.login("shop-mp", "yuri")
    assert (await bind(gw, yuri["accessToken"], "yuri-pw"))["__typename"] == "AccountResult"
    (event,) = await audited(gw, yuri["account"]["id"], "bind_credential")
    assert event["reauthenticated"] == "recent_login"
    later = await password_login(gw, "yuri-pw")
    session_id = (await sessions_of(gw, yuri["account"]["id"]))[-1]
    await age(gw, LoginSession, col(LoginSession.id) == session_id, timedelta(hours=1))
    replica = await make_gw(reauthentication_seconds=300)  # no cached view of that session

    assert (await delete(replica, later["accessToken"]))["code"] == "REAUTHENTICATION_REQUIRED"
    too_new = await delete(replica, later["accessToken"], password=GOOD_PASSWORD)
    assert too_new["code"] == "REAUTHENTICATION_REQUIRED"
    username = col(Identity.kind) == "username"
    await age(gw, Identity, username, timedelta(hours=2))
    done = await delete(replica, later["accessToken"], password=GOOD_PASSWORD)
    assert done["__typename"] == "DeleteAccountSuccess"


async def sessions_of(gw: Harness, account: str) -> list[uuid.UUID]:
    query = (
        select(col(LoginSession.id))
        .where(col(LoginSession.account_id) == account_uuid(account))
        .order_by(col(LoginSession.created_at))
    )
    async with gw.app.state.services.db.reader() as s:
        return list((await s.execute(query)).scalars().all())


# -- the honest paths ----------------------------------------------------------------------


async def test_right_after_a_wechat_login_a_password_and_a_wechat_are_added(
    make_gw: Any,
) -> None:
    """A person whose only way in is WeChat adds a password right after logging in; a recent
    login is re-authentication enough."""
    gw = await make_gw()
    zoe = await gw.login("shop-mp", "zoe")
    token = zoe["accessToken"]
    assert (await bind(gw, token, "zoe-pw"))["__typename"] == "AccountResult"
    assert (await link(gw, token, "solo-mp", "zoe"))["__typename"] == "LinkWechatSuccess"
    code = await phone_code(gw, "zoe", "13700137000")
    bound = await answer(gw, PHONE, token, code=code, proof=None)
    assert bound["__typename"] == "BindPhoneNumberSuccess"
    assert (await password_login(gw, "zoe-pw"))["__typename"] == "LoginSuccess"


async def test_a_wrong_proof_is_refused_even_after_a_recent_login(make_gw: Any) -> None:
    gw = await make_gw()
    amy = await registered(gw, "amy-pw")
    wrong = await link(gw, amy["accessToken"], "solo-mp", "amy", password="wrong-Password-99")
    assert wrong["code"] == "INVALID_CREDENTIALS"
    someone_else = await own_code(gw, "mallory")
    assert (await bind(gw, amy["accessToken"], "amy-two", **someone_else))[
        "code"
    ] == "INVALID_CREDENTIALS"


# -- the cooling-off period ----------------------------------------------------------------


async def test_by_default_a_deletion_waits_seven_days_and_a_login_cancels_it(
    make_gw: Any,
) -> None:
    assert AccountsModel().deletion_grace_days == 7
    gw = await make_gw()
    bea = await gw.login("shop-mp", "bea")
    done = await delete(gw, bea["accessToken"])
    assert done["pending"] is True
    requested = datetime.fromisoformat(done["deletedAt"])
    assert datetime.fromisoformat(done["effectiveAt"]) - requested == timedelta(days=7)
    assert await gw.refused(VIEWER, token=bea["accessToken"]) == "INVALID_TOKEN"  # logged out

    code = await gw.mint("shop-mp", "bea")
    again = await answer(gw, LOGIN, None, app="shop-mp", code=code)
    assert (again["isNewAccount"], again["deletionCancelled"]) == (False, True)
    assert again["account"]["id"] == bea["account"]["id"]


async def test_a_grace_of_zero_erases_at_once(make_gw: Any) -> None:
    gw = await make_gw(deletion_grace_days=0)
    cat = await gw.login("shop-mp", "cat")
    done = await delete(gw, cat["accessToken"])
    assert (done["pending"], done["deletedAt"] == done["effectiveAt"]) == (False, True)
    code = await gw.mint("shop-mp", "cat")
    again = await answer(gw, LOGIN, None, app="shop-mp", code=code)
    assert again["isNewAccount"] is True
