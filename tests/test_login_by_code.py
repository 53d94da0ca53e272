"""loginByCode for mini-programs, end to end: GraphQL over HTTP -> gateway -> WeChat sandbox."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from tests.support.harness import LOGIN, Harness

VIEWER = """{ viewer { id status identities { kind linkedAt app { key kind } } } }"""


async def test_first_login_creates_account_and_returns_gateway_tokens(gw: Harness) -> None:
    first = await gw.login("shop-mp", "alice")
    assert first["isNewAccount"] is True
    assert first["accessToken"].count(".") == 2
    assert first["refreshToken"]
    assert first["refreshToken"] != first["accessToken"]
    assert first["expiresAt"] < first["refreshExpiresAt"]
    kinds = sorted(i["kind"] for i in first["account"]["identities"])
    assert kinds == ["WECHAT_OPENID", "WECHAT_UNIONID"]

    again = await gw.login("shop-mp", "alice")
    assert again["isNewAccount"] is False
    assert again["account"]["id"] == first["account"]["id"]


async def test_viewer_shows_identities_but_never_raw_openid_or_session_key(gw: Harness) -> None:
    login = await gw.login("shop-mp", "bob")
    ids = await gw.wechat_ids("shop-mp", "bob")
    assert ids["openid"]
    assert ids["unionid"]
    assert ids["session_key"]
    body = await gw.gql(VIEWER, token=login["accessToken"])
    assert body["data"]["viewer"]["id"] == login["account"]["id"]
    apps = {i["app"]["key"] for i in body["data"]["viewer"]["identities"] if i["app"]}
    assert apps == {"shop-mp"}
    text = str(body) + str(login)
    for secret in (ids["openid"], ids["unionid"], ids["session_key"]):
        assert secret not in text


async def test_viewer_is_null_without_a_token_and_a_bad_token_is_refused(gw: Harness) -> None:
    assert (await gw.gql(VIEWER))["data"]["viewer"] is None
    assert await gw.refused(VIEWER, token="not-a-token") == "INVALID_TOKEN"
    login = await gw.login("shop-mp", "carol")
    header, payload, signature = login["accessToken"].split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert await gw.refused(VIEWER, token=forged) == "INVALID_TOKEN"


async def test_openid_without_platform_gets_no_unionid_identity(gw: Harness) -> None:
    login = await gw.login("solo-mp", "alice")
    assert [i["kind"] for i in login["account"]["identities"]] == ["WECHAT_OPENID"]


async def test_same_person_through_two_miniprograms_of_one_platform_is_one_account(
    gw: Harness,
) -> None:
    shop = await gw.login("shop-mp", "dave")
    club = await gw.login("club-mp", "dave")
    assert club["isNewAccount"] is False
    assert club["account"]["id"] == shop["account"]["id"]
    solo = await gw.login("solo-mp", "dave")
    assert solo["account"]["id"] != shop["account"]["id"]


@pytest.mark.parametrize(
    ("errcode", "typename", "code"),
    [
        (40029, "CodeRejectedError", "INVALID_CODE"),
        (40163, "CodeRejectedError", "CODE_USED"),
        (40226, "LoginBlockedError", "RISK_BLOCKED"),
        (45011, "RateLimitedError", "RATE_LIMITED"),
        (40013, "UpstreamError", "APP_MISCONFIGURED"),
        (40125, "UpstreamError", "APP_MISCONFIGURED"),
        (41008, "CodeRejectedError", "INVALID_CODE"),
        (-1, "UpstreamError", "UPSTREAM_UNAVAILABLE"),
        (99999, "UpstreamError", "UPSTREAM_ERROR"),
    ],
)
async def test_every_wechat_errcode_is_a_typed_result(
    gw: Harness, errcode: int, typename: str, code: str
) -> None:
    minted = await gw.mint("shop-mp", "erin", errcode=errcode, fail_times=10)
    body = await gw.gql(
        LOGIN, {"app": "shop-mp", "code": minted, "client": {"platform": "android"}}
    )
    result = body["data"]["loginByCode"]
    assert result["__typename"] == typename
    assert result["code"] == code
    assert result["message"]
    assert "errors" not in body


async def test_code_errors_are_never_retried_but_busy_is(gw: Harness) -> None:
    used = await gw.mint("shop-mp", "frank", errcode=40029)
    await gw.gql(LOGIN, {"app": "shop-mp", "code": used, "client": {"platform": "ios"}})
    assert await gw.upstream_calls("/sns/jscode2session") == 1

    busy = await gw.mint("shop-mp", "frank", errcode=-1, fail_times=2)
    body = await gw.gql(LOGIN, {"app": "shop-mp", "code": busy, "client": {"platform": "ios"}})
    assert body["data"]["loginByCode"]["__typename"] == "LoginSuccess"
    assert await gw.upstream_calls("/sns/jscode2session") == 1 + 3


async def test_a_real_reused_code_is_code_used(gw: Harness) -> None:
    code = await gw.mint("shop-mp", "gina")
    variables = {"app": "shop-mp", "code": code, "client": {"platform": "ios"}}
    assert (await gw.gql(LOGIN, variables))["data"]["loginByCode"]["__typename"] == "LoginSuccess"
    # another process (no shared cache) tries the same code: WeChat says 40163
    other = {"app": "club-mp", "code": code, "client": {"platform": "ios"}}
    result = (await gw.gql(LOGIN, other))["data"]["loginByCode"]
    assert result["code"] in {"INVALID_CODE", "CODE_USED"}


@pytest.mark.parametrize(
    ("variables", "typename", "code", "field"),
    [
        ({"app": "nope", "code": "x"}, "UnknownAppError", "UNKNOWN_APP", None),
        ({"app": "news-oa", "code": "x"}, "InvalidInputError", "INVALID_STATE", "state"),
        ({"app": "shop-mp", "code": ""}, "InvalidInputError", "INVALID_INPUT", "code"),
        ({"app": "shop-mp", "code": "x" * 129}, "InvalidInputError", "INVALID_INPUT", "code"),
        ({"app": "shop-mp", "code": "bad code"}, "InvalidInputError", "INVALID_INPUT", "code"),
    ],
)
async def test_bad_input_is_typed_and_never_reaches_wechat(
    gw: Harness, variables: dict[str, Any], typename: str, code: str, field: str | None
) -> None:
    body = await gw.gql(LOGIN, {**variables, "client": {"platform": "ios"}})
    result = body["data"]["loginByCode"]
    assert (result["__typename"], result["code"]) == (typename, code)
    if field:
        assert result["field"] == field
    assert await gw.upstream_calls("/sns/jscode2session") == 0


async def test_oversized_client_fields_are_invalid_input(gw: Harness) -> None:
    code = await gw.mint("shop-mp", "hank")
    body = await gw.gql(
        LOGIN,
        {"app": "shop-mp", "code": code, "client": {"platform": "ios", "deviceParam": "d" * 600}},
    )
    result = body["data"]["loginByCode"]
    assert (result["code"], result["field"]) == ("INVALID_INPUT", "client.device_param")


async def test_same_code_twice_gets_first_result_with_one_upstream_call(gw: Harness) -> None:
    code = await gw.mint("shop-mp", "ivy")
    variables = {"app": "shop-mp", "code": code, "client": {"platform": "ios"}}
    concurrent = await asyncio.gather(*(gw.gql(LOGIN, variables) for _ in range(5)))
    later = await gw.gql(LOGIN, variables)
    results = [b["data"]["loginByCode"] for b in [*concurrent, later]]
    assert {r["__typename"] for r in results} == {"LoginSuccess"}
    assert len({r["account"]["id"] for r in results}) == 1
    assert await gw.upstream_calls("/sns/jscode2session") == 1
    # the remembered outcome kept the session key: WeChat accepts it for the retry's session
    check = "{ checkSession { valid wechatSessionValid } }"
    body = await gw.gql(check, token=results[-1]["accessToken"])
    assert body["data"]["checkSession"] == {"valid": True, "wechatSessionValid": True}


async def test_concurrent_first_logins_with_distinct_codes_create_one_account(
    gw: Harness,
) -> None:
    codes = [await gw.mint(app, "jack") for app in ("shop-mp", "club-mp") for _ in range(4)]
    apps = ["shop-mp"] * 4 + ["club-mp"] * 4
    bodies = await asyncio.gather(
        *(
            gw.gql(LOGIN, {"app": app, "code": code, "client": {"platform": "ios"}})
            for app, code in zip(apps, codes, strict=True)
        )
    )
    results = [b["data"]["loginByCode"] for b in bodies]
    assert {r["__typename"] for r in results} == {"LoginSuccess"}, results
    assert len({r["account"]["id"] for r in results}) == 1
    assert sum(r["isNewAccount"] for r in results) == 1


async def test_account_id_is_opaque_global_id(gw: Harness) -> None:
    login = await gw.login("shop-mp", "kate")
    decoded = base64.b64decode(login["account"]["id"]).decode()
    assert decoded.startswith("Account:")
    node = await gw.gql(
        "query($id: ID!) { node(id: $id) { id ... on Account { status } } }",
        {"id": login["account"]["id"]},
        token=login["accessToken"],
    )
    assert node["data"]["node"]["status"] == "active"
    other = await gw.login("shop-mp", "liam")
    foreign = await gw.gql(
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": other["account"]["id"]},
        token=login["accessToken"],
    )
    assert foreign["data"]["node"] is None
