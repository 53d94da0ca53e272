"""bindUnionId: the unionid from ``wx.getUserInfo``'s encrypted data, checked and linked.

The emulator always puts the unionid in a platform mini-program's ``jscode2session`` answer, so
login alone links it. Real WeChat leaves it out in cases the emulator does not model (before the
mini-program was bound to the open platform, older rules that wanted the user's authorisation
first), and that is exactly what bindUnionId is for. The ``late`` fixture plays that WeChat: a
transport in front of the emulator drops ``unionid`` from mini-program code exchanges, so
``shop-mp``/``club-mp`` logins know only the openid until the user's open data proves more.
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from gateway.accounts.tables import WechatSession
from gateway.audit import ClientInfo
from gateway.bootstrap import services
from gateway.sessions.model import Viewer
from gateway.store.db import create_engine
from gateway.store.models import LoginSession
from tests.support.accounts import (
    BIND,
    UnionIdWithheld,
    account_uuid,
    accounts_in_db,
    bind_unionid,
    count,
    forged,
    identities_in_db,
    kinds,
    merge_events,
    oa_login,
    open_data,
    rotate_at_wechat,
    variables,
    viewer,
)
from tests.support.harness import Harness, MakeConfig, running, sandbox_for


@pytest.fixture
async def late(database_url: str, make_config: MakeConfig) -> AsyncIterator[Harness]:
    config = make_config(database_url)
    sandbox = sandbox_for(config)
    async with running(config, upstream_app=sandbox, transport=UnionIdWithheld(sandbox)) as gw:
        yield gw


# -- linking --------------------------------------------------------------------------------


async def test_bind_links_the_unionid_once(late: Harness) -> None:
    login = await late.login("shop-mp", "alice")
    assert kinds(login["account"]) == [("WECHAT_OPENID", "shop-mp")]

    result = await bind_unionid(
        late, login["accessToken"], await open_data(late, "shop-mp", "alice")
    )
    assert result["__typename"] == "BindUnionIdSuccess", result
    assert (result["linked"], result["merged"]) == (True, False)
    assert result["account"]["id"] == login["account"]["id"]
    assert kinds(result["account"]) == [("WECHAT_OPENID", "shop-mp"), ("WECHAT_UNIONID", None)]
    ids = await late.wechat_ids("shop-mp", "alice")
    stored = {(i.kind, i.scope, i.subject) for i in await identities_in_db(late)}
    assert ("wechat_unionid", "test-platform", ids["unionid"]) in stored

    again = await bind_unionid(
        late, login["accessToken"], await open_data(late, "shop-mp", "alice")
    )
    assert (again["__typename"], again["linked"], again["merged"]) == (
        "BindUnionIdSuccess",
        False,
        False,
    )
    # the unionid now finds alice through the official account too
    oa = await oa_login(late, "alice")
    assert (oa["isNewAccount"], oa["account"]["id"]) == (False, login["account"]["id"])


async def test_bind_merges_accounts_the_unionid_proves_are_one_person(late: Harness) -> None:
    shop = await late.login("shop-mp", "bob")  # openid only
    oa = await oa_login(late, "bob")  # unionid + openid: a second account
    assert oa["account"]["id"] != shop["account"]["id"]

    result = await bind_unionid(late, shop["accessToken"], await open_data(late, "shop-mp", "bob"))
    assert result["__typename"] == "BindUnionIdSuccess", result
    assert (result["merged"], result["linked"]) == (True, False)
    assert result["account"]["id"] == shop["account"]["id"]  # the older survives
    assert kinds(result["account"]) == [
        ("WECHAT_OPENID", "news-oa"),
        ("WECHAT_OPENID", "shop-mp"),
        ("WECHAT_UNIONID", None),
    ]
    assert (await viewer(late, oa["accessToken"]))["id"] == shop["account"]["id"]
    survivor, absorbed = account_uuid(shop["account"]["id"]), account_uuid(oa["account"]["id"])
    accounts = await accounts_in_db(late)
    assert (accounts[absorbed].status, accounts[absorbed].merged_into_id) == ("merged", survivor)
    events = await merge_events(late)
    assert [(e.account_id, e.detail["merged"]) for e in events] == [(survivor, [str(absorbed)])]
    assert await count(late, LoginSession) == await count(
        late, LoginSession, LoginSession.account_id == survivor
    )


async def test_bind_in_a_second_miniprogram_merges_too(late: Harness) -> None:
    shop = await late.login("shop-mp", "carl")
    club = await late.login("club-mp", "carl")  # no unionid from WeChat: a new account
    assert club["account"]["id"] != shop["account"]["id"]
    assert (
        await bind_unionid(late, shop["accessToken"], await open_data(late, "shop-mp", "carl"))
    )["merged"] is False
    result = await bind_unionid(late, club["accessToken"], await open_data(late, "club-mp", "carl"))
    assert (result["__typename"], result["merged"]) == ("BindUnionIdSuccess", True)
    assert result["account"]["id"] == shop["account"]["id"]
    assert (await viewer(late, club["accessToken"]))["id"] == shop["account"]["id"]


async def test_a_bind_that_read_its_account_before_a_merge_still_binds(
    late: Harness, database_url: str
) -> None:
    """A bind whose caller was read just before another request merged that account away
    (two binds of one person racing) finds the session key on the survivor, which now holds
    its identities: it binds, never a false SESSION_EXPIRED (seen once in CI's race test).
    The race's window is held open by handing the use case the caller as it was read."""
    shop = await late.login("shop-mp", "dora")
    club = await late.login("club-mp", "dora")
    await bind_unionid(late, shop["accessToken"], await open_data(late, "shop-mp", "dora"))
    club_data = await open_data(late, "club-mp", "dora")
    merged = await bind_unionid(late, club["accessToken"], club_data)
    assert merged["merged"] is True
    stale = Viewer(account_uuid(club["account"]["id"]), uuid.uuid4(), "club-mp", datetime.now(UTC))
    async with services(late.config) as svc:
        outcome = await svc.api.miniprogram.bind_unionid(
            stale,
            club_data["encryptedData"],
            club_data["iv"],
            club_data["rawData"],
            club_data["signature"],
            ClientInfo("devtools"),
        )
    assert outcome.account_id == account_uuid(shop["account"]["id"])


async def test_plus_turned_into_space_by_form_decoding_is_repaired(late: Harness) -> None:
    login = await late.login("shop-mp", "dina")
    for _ in range(30):  # random ciphertext: find one with a '+' to lose
        data = await open_data(late, "shop-mp", "dina")
        if "+" in data["encryptedData"]:
            break
    assert "+" in data["encryptedData"]
    mangled = {**data, "encryptedData": data["encryptedData"].replace("+", " ")}
    mangled["iv"] = data["iv"].replace("+", " ")
    result = await bind_unionid(late, login["accessToken"], mangled)
    assert (result["__typename"], result["linked"]) == ("BindUnionIdSuccess", True)


# -- refusals -------------------------------------------------------------------------------


def _garbage() -> dict[str, str]:
    return {"encryptedData": base64.b64encode(os.urandom(64)).decode()}


REFUSED = [
    ("random ciphertext", "INVALID_ENCRYPTED_DATA"),
    ("not base64", "INVALID_ENCRYPTED_DATA"),
    ("truncated", "INVALID_ENCRYPTED_DATA"),
    ("short iv", "INVALID_ENCRYPTED_DATA"),
    ("other app's watermark", "WATERMARK_MISMATCH"),
    ("no watermark", "WATERMARK_MISMATCH"),
    ("other user's openId", "OPENID_MISMATCH"),
    ("bad signature", "SIGNATURE_MISMATCH"),
    ("rawData edited", "SIGNATURE_MISMATCH"),
    ("signature without rawData", "SIGNATURE_MISMATCH"),
]


async def _spoil(gw: Harness, case: str) -> dict[str, str]:
    data = await open_data(gw, "shop-mp", "erin")
    if case == "random ciphertext":
        return data | _garbage()
    if case == "not base64":
        return data | {"encryptedData": "%%%not base64%%%"}
    if case == "truncated":
        cut = base64.b64decode(data["encryptedData"])[:-5]
        return data | {"encryptedData": base64.b64encode(cut).decode()}
    if case == "short iv":
        return data | {"iv": base64.b64encode(b"0123456789").decode()}
    if case == "other app's watermark":
        return await forged(gw, "shop-mp", "erin", watermark={"appid": gw.appid("club-mp")})
    if case == "no watermark":
        return await forged(gw, "shop-mp", "erin", watermark=None)
    if case == "other user's openId":
        frank = await gw.wechat_ids("shop-mp", "frank")
        return await forged(gw, "shop-mp", "erin", openId=frank["openid"])
    if case == "bad signature":
        return data | {"signature": "0" * 40}
    if case == "rawData edited":
        return data | {"rawData": data["rawData"].replace("erin", "root")}
    assert case == "signature without rawData"
    del data["rawData"]
    return data


async def test_open_data_that_does_not_check_out_is_refused_and_links_nothing(
    late: Harness,
) -> None:
    login = await late.login("shop-mp", "erin")
    await late.login("shop-mp", "frank")
    for case, code in REFUSED:
        data = await _spoil(late, case)
        body = await late.gql(
            BIND,
            {
                "data": data["encryptedData"],
                "iv": data["iv"],
                "raw": data.get("rawData"),
                "sig": data.get("signature"),
            },
            token=login["accessToken"],
        )
        result = body["data"]["bindUnionId"]
        assert (result["__typename"], result["code"]) == ("OpenDataError", code), case
        assert result["message"]
    assert kinds(await viewer(late, login["accessToken"])) == [("WECHAT_OPENID", "shop-mp")]
    assert await merge_events(late) == []
    # the same session still binds with the genuine article
    result = await bind_unionid(
        late, login["accessToken"], await open_data(late, "shop-mp", "erin")
    )
    assert (result["__typename"], result["linked"]) == ("BindUnionIdSuccess", True)


async def test_a_session_key_rotated_behind_the_gateway_is_session_expired(late: Harness) -> None:
    login = await late.login("shop-mp", "gail")
    await rotate_at_wechat(late, "shop-mp", "gail")
    stale = await open_data(late, "shop-mp", "gail")  # sealed with the key the gateway lacks
    result = await bind_unionid(late, login["accessToken"], stale)
    assert (result["__typename"], result["code"]) == ("SessionExpiredError", "SESSION_EXPIRED")
    assert kinds(await viewer(late, login["accessToken"])) == [("WECHAT_OPENID", "shop-mp")]
    assert await late.upstream_calls("/wxa/checksession") == 1  # WeChat was asked, not guessed

    fresh = await late.login("shop-mp", "gail")  # wx.login + loginByCode, as the error says
    result = await bind_unionid(
        late, fresh["accessToken"], await open_data(late, "shop-mp", "gail")
    )
    assert (result["__typename"], result["linked"]) == ("BindUnionIdSuccess", True)


# -- the previous session_key -------------------------------------------------------------------


async def test_data_fetched_just_before_a_new_login_still_binds(late: Harness) -> None:
    """wx.getUserInfo, then wx.login + loginByCode (the order clients get wrong): the data is
    sealed with the previous key, which the gateway keeps for a few minutes."""
    await late.login("shop-mp", "pam")
    data = await open_data(late, "shop-mp", "pam")  # sealed with the key of that login
    again = await late.login("shop-mp", "pam")  # WeChat rotates the key
    result = await bind_unionid(late, again["accessToken"], data)
    assert (result["__typename"], result["linked"]) == ("BindUnionIdSuccess", True)


async def test_old_data_under_the_previous_key_is_session_expired(late: Harness) -> None:
    await late.login("shop-mp", "quin")
    old = await forged(late, "shop-mp", "quin")  # the previous key, a watermark from 1970
    again = await late.login("shop-mp", "quin")
    result = await bind_unionid(late, again["accessToken"], old)
    assert (result["__typename"], result["code"]) == ("SessionExpiredError", "SESSION_EXPIRED")
    assert "wx.login" in result["message"]
    assert "wx.getUserInfo" in result["message"]
    assert kinds(await viewer(late, again["accessToken"])) == [("WECHAT_OPENID", "shop-mp")]


async def test_the_previous_key_is_dropped_after_a_few_minutes(late: Harness) -> None:
    await late.login("shop-mp", "rosa")
    data = await open_data(late, "shop-mp", "rosa")
    again = await late.login("shop-mp", "rosa")
    engine = create_engine(late.config.database_url)
    try:
        async with engine.begin() as conn:  # the keeping time has run out
            past = datetime.now(UTC) - timedelta(seconds=1)
            await conn.execute(update(WechatSession).values(previous_until=past))
    finally:
        await engine.dispose()
    result = await bind_unionid(late, again["accessToken"], data)
    assert (result["__typename"], result["code"]) == ("OpenDataError", "INVALID_ENCRYPTED_DATA")


async def test_tampered_data_is_refused_with_a_previous_key_kept_too(late: Harness) -> None:
    await late.login("shop-mp", "sven")
    data = await open_data(late, "shop-mp", "sven") | _garbage()
    again = await late.login("shop-mp", "sven")
    result = await bind_unionid(late, again["accessToken"], data)
    assert result["code"] == "INVALID_ENCRYPTED_DATA"


async def test_tampered_data_with_a_current_key_is_not_called_session_expired(
    late: Harness,
) -> None:
    login = await late.login("shop-mp", "hugo")
    data = await open_data(late, "shop-mp", "hugo") | _garbage()
    result = await bind_unionid(late, login["accessToken"], data)
    assert result["code"] == "INVALID_ENCRYPTED_DATA"


async def test_no_unionid_outside_an_open_platform(gw: Harness) -> None:
    login = await gw.login("solo-mp", "ivan")
    result = await bind_unionid(gw, login["accessToken"], await open_data(gw, "solo-mp", "ivan"))
    assert (result["__typename"], result["code"]) == ("NoUnionIdError", "NO_UNIONID")
    assert kinds(await viewer(gw, login["accessToken"])) == [("WECHAT_OPENID", "solo-mp")]


async def test_no_unionid_in_the_open_data(late: Harness) -> None:
    login = await late.login("shop-mp", "jane")
    result = await bind_unionid(
        late, login["accessToken"], await forged(late, "shop-mp", "jane", unionId=None)
    )
    assert (result["__typename"], result["code"]) == ("NoUnionIdError", "NO_UNIONID")


async def test_bind_needs_a_login(gw: Harness) -> None:
    await gw.login("shop-mp", "kurt")
    data = await open_data(gw, "shop-mp", "kurt")
    result = await bind_unionid(gw, None, data)
    assert (result["__typename"], result["code"]) == ("NotAuthenticatedError", "NOT_LOGGED_IN")
    assert await gw.refused(BIND, variables(data), token="not-a-token") == "INVALID_TOKEN"
    assert await gw.upstream_calls("/wxa/checksession") == 0


async def test_bind_needs_a_miniprogram_session(gw: Harness) -> None:
    oa = await oa_login(gw, "lena")
    await gw.login("shop-mp", "lena")
    result = await bind_unionid(gw, oa["accessToken"], await open_data(gw, "shop-mp", "lena"))
    assert (result["__typename"], result["code"]) == ("UnknownAppError", "UNSUPPORTED_APP_KIND")


# -- profile --------------------------------------------------------------------------------


async def test_the_anonymous_profile_never_overwrites_a_real_one(gw: Harness) -> None:
    oa = await oa_login(gw, "mona")  # snsapi_userinfo: the real nickname and avatar
    real = (oa["account"]["nickname"], oa["account"]["avatarUrl"])
    assert real[0] == "mona"
    shop = await gw.login("shop-mp", "mona")
    assert shop["account"]["id"] == oa["account"]["id"]

    anonymous = await open_data(gw, "shop-mp", "mona", anonymous=True)
    assert "微信用户" in anonymous["rawData"]
    result = await bind_unionid(gw, shop["accessToken"], anonymous)
    assert result["__typename"] == "BindUnionIdSuccess", result
    assert (result["account"]["nickname"], result["account"]["avatarUrl"]) == real
    me = await viewer(gw, oa["accessToken"])
    assert (me["nickname"], me["avatarUrl"]) == real


async def test_a_real_profile_from_open_data_is_kept_and_anonymous_ignored(late: Harness) -> None:
    login = await late.login("shop-mp", "nina")
    anonymous = await bind_unionid(
        late, login["accessToken"], await open_data(late, "shop-mp", "nina", anonymous=True)
    )
    assert anonymous["account"]["nickname"] is None
    real = await bind_unionid(late, login["accessToken"], await open_data(late, "shop-mp", "nina"))
    assert real["account"]["nickname"] == "nina"
    assert real["account"]["avatarUrl"].startswith("https://thirdwx.qlogo.cn/")
    again = await bind_unionid(
        late, login["accessToken"], await open_data(late, "shop-mp", "nina", anonymous=True)
    )
    assert again["account"]["nickname"] == "nina"


# -- concurrency ----------------------------------------------------------------------------


async def test_concurrent_binds_that_merge_the_same_accounts_lose_nothing(late: Harness) -> None:
    """Three accounts of one person (shop-mp and club-mp without unionid, news-oa with it);
    binds from both mini-programs race to merge them: one survivor holding every identity."""
    shop = await late.login("shop-mp", "olga")
    oa = await oa_login(late, "olga")
    club = await late.login("club-mp", "olga")
    tokens = [shop["accessToken"], oa["accessToken"], club["accessToken"]]
    assert len({shop["account"]["id"], oa["account"]["id"], club["account"]["id"]}) == 3
    shop_data = await open_data(late, "shop-mp", "olga")
    club_data = await open_data(late, "club-mp", "olga")

    bodies = await asyncio.gather(
        *(late.gql(BIND, variables(shop_data), token=shop["accessToken"]) for _ in range(4)),
        *(late.gql(BIND, variables(club_data), token=club["accessToken"]) for _ in range(4)),
    )
    assert all("errors" not in body for body in bodies), bodies
    results = [body["data"]["bindUnionId"] for body in bodies]
    assert {r["__typename"] for r in results} == {"BindUnionIdSuccess"}, results

    survivor = account_uuid(shop["account"]["id"])  # the oldest
    accounts = await accounts_in_db(late)
    assert [a.id for a in accounts.values() if a.status == "active"] == [survivor]
    assert {a.merged_into_id for a in accounts.values() if a.id != survivor} == {survivor}
    assert len(await identities_in_db(late)) == 4
    assert {i.account_id for i in await identities_in_db(late)} == {survivor}
    assert len(await merge_events(late)) == 2
    for token in tokens:
        me = await viewer(late, token)
        assert me["id"] == shop["account"]["id"]
        assert kinds(me) == [
            ("WECHAT_OPENID", "club-mp"),
            ("WECHAT_OPENID", "news-oa"),
            ("WECHAT_OPENID", "shop-mp"),
            ("WECHAT_UNIONID", None),
        ]
