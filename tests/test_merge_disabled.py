"""A merge never undoes a disable (issue 30, defect 3). A person reached through ``news-oa``'s
``snsapi_base`` (an older account, openid only) and through ``shop-mp`` (a newer account with
the unionid, disabled by an operator): a later ``snsapi_userinfo`` login proves them one person.
The rule (README, "Disabled accounts"): a merge involving a disabled account is refused; the
login answers ``ACCOUNT_DISABLED``, nothing moves, and a ``merge_refused`` event on the
disabled account tells the operator why (``gateway accounts show``)."""

from __future__ import annotations

from gateway.rights.service import Operator
from tests.support.accounts import account_uuid, link
from tests.support.accounts import wechat_login as login
from tests.support.harness import Harness
from tests.support.passwords import registered


async def test_a_merge_with_a_disabled_account_is_refused_and_the_operator_sees_why(
    gw: Harness,
) -> None:
    older = await login(gw, "news-oa", "wx-vera", "snsapi_base")
    newer = await login(gw, "shop-mp", "wx-vera")
    assert older["isNewAccount"], older
    assert newer["isNewAccount"], newer
    rights = gw.app.state.api.rights
    disabled_id = account_uuid(newer["account"]["id"])
    await rights.set_disabled(disabled_id, True, Operator("ops", "fraud"))

    merging = await login(gw, "news-oa", "wx-vera", "snsapi_userinfo")
    assert merging == {"__typename": "AccountDisabledError", "code": "ACCOUNT_DISABLED"}
    for app in ("shop-mp", "club-mp"):  # every door of the unionid stays shut
        assert (await login(gw, app, "wx-vera"))["code"] == "ACCOUNT_DISABLED"

    shown = await rights.show(disabled_id)
    assert shown["account"]["status"] == "disabled", shown["account"]
    kinds = sorted((i["kind"], i["app"]) for i in shown["identities"])
    assert [k for k, _ in kinds] == ["wechat_openid", "wechat_unionid"], kinds
    (refused,) = [e for e in shown["lastEvents"] if e["kind"] == "merge_refused"]
    assert refused["detail"]["accounts"] == [str(account_uuid(older["account"]["id"]))], refused
    assert not [e for e in shown["lastEvents"] if e["kind"] == "merge"]
    other = await rights.show(account_uuid(older["account"]["id"]))
    assert other["account"]["status"] == "active", other["account"]
    assert [i["kind"] for i in other["identities"]] == ["wechat_openid"]


async def test_linking_a_disabled_accounts_wechat_is_a_conflict_not_a_merge(gw: Harness) -> None:
    """The same rule on ``linkWechat``: a password account links ``news-oa``, whose unionid
    sits on a disabled account."""
    disabled = await login(gw, "shop-mp", "wx-walt")
    disabled_id = account_uuid(disabled["account"]["id"])
    await gw.app.state.api.rights.set_disabled(disabled_id, True, Operator("ops", "fraud"))
    mine = await registered(gw, "walt")
    await link(gw, mine["accessToken"], "news-oa", "wx-walt", scope="snsapi_base")

    result = await link(gw, mine["accessToken"], "news-oa", "wx-walt", scope="snsapi_userinfo")
    assert result["code"] == "IDENTITY_CONFLICT", result
    shown = await gw.app.state.api.rights.show(disabled_id)
    assert shown["account"]["status"] == "disabled"
    assert [e["kind"] for e in shown["lastEvents"]].count("merge_refused") == 1
