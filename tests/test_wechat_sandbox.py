"""The WeChat emulator: every errcode path, single-use codes, key rotation, unionid rules."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from gateway.wechat.crypto import (
    OpenDataError,
    check_session_signature,
    decrypt_open_data,
    verify_open_data,
    verify_signature,
)
from gateway.wechat.sandbox import SandboxApp, create_sandbox_app

APPS = [
    SandboxApp("wxmp1", "mp1-secret", "miniprogram", "plat-a"),
    SandboxApp("wxmp2", "mp2-secret", "miniprogram", "plat-a"),
    SandboxApp("wxsolo", "solo-secret", "miniprogram", None),
    SandboxApp("wxoa", "oa-secret", "official_account", "plat-a"),
    SandboxApp("wxweb", "web-secret", "website", "plat-b"),
    SandboxApp("wxapp", "app-secret", "mobile_app", None),
]
SECRETS = {app.appid: app.secret for app in APPS}
Json = dict[str, Any]
GRANT = {"grant_type": "authorization_code"}
PHONE_URL = "/wxa/business/getuserphonenumber"


@pytest.fixture
def sandbox() -> Starlette:
    return create_sandbox_app(APPS)


def client_for(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://wechat")


@pytest.fixture
async def wechat(sandbox: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(sandbox) as client:
        yield client


async def get(client: httpx.AsyncClient, path: str, **params: str) -> Json:
    response = await client.get(path, params=params)
    assert response.status_code == 200  # WeChat answers failures with HTTP 200 too
    body: Json = response.json()
    return body


async def post(client: httpx.AsyncClient, path: str, body: object, **params: str) -> Json:
    response = await client.post(path, json=body, params=params)
    assert response.status_code == 200, response.text
    result: Json = response.json()
    return result


async def mint(client: httpx.AsyncClient, appid: str, user: str, **extra: Any) -> str:
    body = await post(client, "/sandbox/codes", {"appid": appid, "user": user, **extra})
    return str(body["code"])


async def js_login(client: httpx.AsyncClient, appid: str, code: str, /, **override: str) -> Json:
    params = {"appid": appid, "secret": SECRETS.get(appid, "x"), "js_code": code}
    return await get(client, "/sns/jscode2session", **{**GRANT, **params, **override})


async def oauth(client: httpx.AsyncClient, appid: str, code: str, /, **override: str) -> Json:
    params = {"appid": appid, "secret": SECRETS.get(appid, "x"), "code": code}
    return await get(client, "/sns/oauth2/access_token", **{**GRANT, **params, **override})


async def login(client: httpx.AsyncClient, appid: str, user: str) -> Json:
    return await js_login(client, appid, await mint(client, appid, user))


async def app_token(client: httpx.AsyncClient, appid: str, *, force: bool = False) -> Json:
    body = {"grant_type": "client_credential", "appid": appid, "secret": SECRETS[appid]}
    return await post(client, "/cgi-bin/stable_token", {**body, "force_refresh": force})


async def advance(client: httpx.AsyncClient, seconds: float) -> None:
    await post(client, "/sandbox/clock", {"advance": seconds})


async def identity(client: httpx.AsyncClient, appid: str, user: str) -> Json:
    return await get(client, "/sandbox/identity", appid=appid, user=user)


async def userinfo(client: httpx.AsyncClient, token: str, openid: str) -> Json:
    return await get(client, "/sns/userinfo", access_token=token, openid=openid, lang="zh_CN")


async def phone_number(client: httpx.AsyncClient, token: str, code: str) -> Json:
    body = await post(client, PHONE_URL, {"code": code}, access_token=token)
    return {"errcode": body["errcode"]} if body["errcode"] else body


async def sealed_profile(client: httpx.AsyncClient, appid: str, user: str, **extra: Any) -> Json:
    return await post(client, "/sandbox/encrypted-data", {"appid": appid, "user": user, **extra})


async def test_jscode2session_returns_realistic_ids(wechat: httpx.AsyncClient) -> None:
    body = await login(wechat, "wxmp1", "alice")
    assert set(body) == {"openid", "session_key", "unionid"}
    assert len(body["openid"]) == 28
    assert body["openid"].startswith("o")
    assert len(body["unionid"]) == 28
    assert len(body["session_key"]) == 24
    assert len(base64.b64decode(body["session_key"])) == 16
    assert body == {**body, **(await identity(wechat, "wxmp1", "alice"))}


async def test_lookup_tables_name_the_user(sandbox: Starlette, wechat: httpx.AsyncClient) -> None:
    body = await login(wechat, "wxmp1", "alice")
    state = sandbox.state.sandbox
    assert state.users_by_openid[body["openid"]] == ("wxmp1", "alice")
    assert state.users_by_unionid[body["unionid"]] == ("plat-a", "alice")


async def test_ids_are_per_app_and_unionids_per_platform(wechat: httpx.AsyncClient) -> None:
    one, two = await login(wechat, "wxmp1", "alice"), await login(wechat, "wxmp2", "alice")
    bob = await login(wechat, "wxmp1", "bob")
    assert one["openid"] != two["openid"]
    assert one["unionid"] == two["unionid"]
    assert bob["unionid"] != one["unionid"]
    web = await oauth(wechat, "wxweb", await mint(wechat, "wxweb", "alice"))
    assert web["scope"] == "snsapi_login"
    assert web["unionid"] not in (None, one["unionid"])  # another open platform


async def test_ids_are_deterministic_across_emulators(wechat: httpx.AsyncClient) -> None:
    async with client_for(create_sandbox_app(APPS)) as c:
        theirs = await login(c, "wxmp1", "alice")
        code = await mint(c, "wxmp1", "alice")
    ours = await login(wechat, "wxmp1", "alice")
    assert theirs["openid"] == ours["openid"]
    assert theirs["unionid"] == ours["unionid"]
    assert theirs["session_key"] != ours["session_key"]
    assert (await js_login(wechat, "wxmp1", code))["errcode"] == 40029  # state is not shared


async def test_no_platform_means_no_unionid_anywhere(wechat: httpx.AsyncClient) -> None:
    session = await login(wechat, "wxsolo", "alice")
    assert "unionid" not in session
    assert (await identity(wechat, "wxsolo", "alice"))["unionid"] is None
    sealed = await sealed_profile(wechat, "wxsolo", "alice")
    data = decrypt_open_data(session["session_key"], sealed["encryptedData"], sealed["iv"])
    assert data["openId"] == session["openid"]
    assert "unionId" not in data
    grant = await oauth(wechat, "wxapp", await mint(wechat, "wxapp", "alice"))
    assert grant["scope"] == "snsapi_userinfo"
    assert "unionid" not in grant
    info = await userinfo(wechat, grant["access_token"], grant["openid"])
    assert info["nickname"] == "alice"
    assert "unionid" not in info


async def test_code_works_once(wechat: httpx.AsyncClient) -> None:
    code = await mint(wechat, "wxmp1", "alice")
    first = await js_login(wechat, "wxmp1", code)
    assert "openid" in first
    assert (await js_login(wechat, "wxmp1", code))["errcode"] == 40163
    calls = (await get(wechat, "/sandbox/stats"))["calls"]
    assert calls["/sns/jscode2session"] == 2
    assert calls["/sns/oauth2/access_token"] == 0


@pytest.mark.parametrize(
    ("override", "errcode"),
    [
        ({"appid": "wxnope"}, 40013),
        ({"appid": "wxoa", "secret": "oa-secret"}, 40013),  # not a mini-program
        ({"secret": "wrong"}, 40125),
        ({"js_code": ""}, 41008),
        ({"js_code": "no-such-code"}, 40029),
        ({"appid": "wxmp2", "secret": "mp2-secret"}, 40029),  # the code belongs to wxmp1
        ({"grant_type": "client_credential"}, 40002),
    ],
)
async def test_jscode2session_errors(
    wechat: httpx.AsyncClient, override: dict[str, str], errcode: int
) -> None:
    code = await mint(wechat, "wxmp1", "alice")
    body = await js_login(wechat, "wxmp1", code, **override)
    assert body["errcode"] == errcode
    assert isinstance(body["errmsg"], str)
    assert "openid" not in body
    assert "openid" in await js_login(wechat, "wxmp1", code)  # a rejected call burns nothing


async def test_expired_codes(wechat: httpx.AsyncClient) -> None:
    mp, oa = await mint(wechat, "wxmp1", "alice"), await mint(wechat, "wxoa", "alice")
    web = await mint(wechat, "wxweb", "alice")
    await advance(wechat, 301)
    assert (await js_login(wechat, "wxmp1", mp))["errcode"] == 40029
    assert (await oauth(wechat, "wxoa", oa))["errcode"] == 42003
    assert "openid" in await oauth(wechat, "wxweb", web)  # QR codes live 10 minutes
    web = await mint(wechat, "wxweb", "alice")
    await advance(wechat, 601)
    assert (await oauth(wechat, "wxweb", web))["errcode"] == 42003


@pytest.mark.parametrize("errcode", [40226, 45011, -1])
async def test_injected_errcode_always_fails(wechat: httpx.AsyncClient, errcode: int) -> None:
    code = await mint(wechat, "wxmp1", "alice", errcode=errcode)
    for _ in range(3):
        assert (await js_login(wechat, "wxmp1", code))["errcode"] == errcode


async def test_fail_times_then_success_then_used(wechat: httpx.AsyncClient) -> None:
    code = await mint(wechat, "wxmp1", "alice", fail_times=2)  # errcode defaults to -1
    assert (await js_login(wechat, "wxmp1", code))["errcode"] == -1
    assert (await js_login(wechat, "wxmp1", code))["errcode"] == -1
    assert "session_key" in await js_login(wechat, "wxmp1", code)
    assert (await js_login(wechat, "wxmp1", code))["errcode"] == 40163
    oa_code = await mint(wechat, "wxoa", "bob", errcode=45011, fail_times=1)
    assert (await oauth(wechat, "wxoa", oa_code))["errcode"] == 45011
    assert "access_token" in await oauth(wechat, "wxoa", oa_code)


async def test_concurrent_double_exchange_one_wins() -> None:
    async with client_for(create_sandbox_app(APPS, latency=0.02)) as c:
        code = await mint(c, "wxmp1", "alice")
        started = time.perf_counter()
        results = await asyncio.gather(js_login(c, "wxmp1", code), js_login(c, "wxmp1", code))
        assert time.perf_counter() - started >= 0.02
        assert sorted("openid" in r for r in results) == [False, True]
        assert [r["errcode"] for r in results if "errcode" in r] == [40163]
        assert (await get(c, "/sandbox/stats"))["calls"]["/sns/jscode2session"] == 2


async def test_session_key_rotates_and_checksession_knows(wechat: httpx.AsyncClient) -> None:
    first, second = await login(wechat, "wxmp1", "alice"), await login(wechat, "wxmp1", "alice")
    assert first["openid"] == second["openid"]
    assert first["session_key"] != second["session_key"]
    token = (await app_token(wechat, "wxmp1"))["access_token"]

    async def check(key: str, **override: str) -> Json:
        params = {"access_token": token, "openid": first["openid"], "sig_method": "hmac_sha256"}
        params = {**params, "signature": check_session_signature(key), **override}
        return await get(wechat, "/wxa/checksession", **params)

    assert (await check(second["session_key"]))["errcode"] == 0
    assert (await check(first["session_key"]))["errcode"] == 87009
    assert (await check(second["session_key"], sig_method="md5"))["errcode"] == 87009
    assert (await check(second["session_key"], openid="o-unknown"))["errcode"] == 87009
    assert (await check(second["session_key"], access_token="bad"))["errcode"] == 40001
    assert (await check(second["session_key"], access_token=""))["errcode"] == 41001


async def test_resetusersessionkey_rotates(wechat: httpx.AsyncClient) -> None:
    session = await login(wechat, "wxmp1", "alice")
    token = (await app_token(wechat, "wxmp1"))["access_token"]
    params = {"access_token": token, "openid": session["openid"], "sig_method": "hmac_sha256"}
    params["signature"] = check_session_signature(session["session_key"])
    reset = await get(wechat, "/wxa/resetusersessionkey", **params)
    assert reset["errcode"] == 0
    assert reset["session_key"] != session["session_key"]
    assert (await get(wechat, "/wxa/checksession", **params))["errcode"] == 87009


async def test_stable_token_same_until_forced_or_expired(wechat: httpx.AsyncClient) -> None:
    first, again = await app_token(wechat, "wxmp1"), await app_token(wechat, "wxmp1")
    assert first == again
    assert first["expires_in"] == 7200
    assert (await app_token(wechat, "wxmp2"))["access_token"] != first["access_token"]
    forced = await app_token(wechat, "wxmp1", force=True)
    assert forced["access_token"] != first["access_token"]
    assert await phone_number(wechat, first["access_token"], "x") == {"errcode": 40001}
    await advance(wechat, 7200)
    assert await phone_number(wechat, forced["access_token"], "x") == {"errcode": 42001}
    assert (await app_token(wechat, "wxmp1"))["access_token"] != forced["access_token"]


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"grant_type": "client_credential", "appid": "wxmp1", "secret": "no"}, 40125),
        ({"grant_type": "client_credential", "appid": "wxnope", "secret": "no"}, 40013),
        ({"grant_type": "password", "appid": "wxmp1", "secret": "mp1-secret"}, 40002),
        ([], 47001),
    ],
)
async def test_stable_token_errors(wechat: httpx.AsyncClient, body: object, errcode: int) -> None:
    assert (await post(wechat, "/cgi-bin/stable_token", body))["errcode"] == errcode
    bad_json = await wechat.post("/cgi-bin/stable_token", content=b"{not json")
    assert bad_json.status_code == 200
    assert bad_json.json()["errcode"] == 47001


async def test_oauth_base_scope_has_no_unionid_nor_profile(wechat: httpx.AsyncClient) -> None:
    grant = await oauth(wechat, "wxoa", await mint(wechat, "wxoa", "alice"))
    assert grant["scope"] == "snsapi_base"
    assert grant["expires_in"] == 7200
    assert "unionid" not in grant
    assert "is_snapshotuser" not in grant
    assert grant["openid"] == (await identity(wechat, "wxoa", "alice"))["openid"]
    assert (await userinfo(wechat, grant["access_token"], grant["openid"]))["errcode"] == 48001


async def test_oauth_userinfo_scope(wechat: httpx.AsyncClient) -> None:
    code = await mint(wechat, "wxoa", "alice", scope="snsapi_userinfo")
    grant = await oauth(wechat, "wxoa", code)
    assert grant["unionid"] == (await login(wechat, "wxmp1", "alice"))["unionid"]
    info = await userinfo(wechat, grant["access_token"], grant["openid"])
    assert info["nickname"] == "alice"
    assert info["unionid"] == grant["unionid"]
    assert info["headimgurl"].startswith("https://")
    assert (await userinfo(wechat, grant["access_token"], "o-other"))["errcode"] == 40003
    assert (await userinfo(wechat, "bad-token", grant["openid"]))["errcode"] == 40001
    assert (await oauth(wechat, "wxoa", code))["errcode"] == 40163
    await advance(wechat, 7200)
    assert (await userinfo(wechat, grant["access_token"], grant["openid"]))["errcode"] == 42001


@pytest.mark.parametrize(
    ("override", "errcode"),
    [
        ({"appid": "wxmp1"}, 40013),
        ({"secret": "nope"}, 40125),
        ({"code": ""}, 41008),
        ({"code": "forged"}, 40029),
    ],
)
async def test_oauth_errors(
    wechat: httpx.AsyncClient, override: dict[str, str], errcode: int
) -> None:
    body = await oauth(wechat, "wxoa", await mint(wechat, "wxoa", "alice"), **override)
    assert body["errcode"] == errcode
    assert "access_token" not in body


async def test_snapshot_user_gets_fake_ids(wechat: httpx.AsyncClient) -> None:
    code = await mint(wechat, "wxoa", "alice", snapshot=True, scope="snsapi_userinfo")
    grant = await oauth(wechat, "wxoa", code)
    real = await identity(wechat, "wxoa", "alice")
    assert grant["is_snapshotuser"] == 1
    assert grant["openid"] != real["openid"]
    assert grant["unionid"] != real["unionid"]


async def test_refresh_token(wechat: httpx.AsyncClient) -> None:
    grant = await oauth(wechat, "wxapp", await mint(wechat, "wxapp", "bob"))

    async def refresh(token: str, appid: str = "wxapp") -> Json:
        params = {"appid": appid, "grant_type": "refresh_token", "refresh_token": token}
        return await get(wechat, "/sns/oauth2/refresh_token", **params)

    fresh = await refresh(grant["refresh_token"])
    assert fresh["access_token"] != grant["access_token"]
    assert fresh["openid"] == grant["openid"]
    assert (await userinfo(wechat, fresh["access_token"], grant["openid"]))["nickname"] == "bob"
    assert (await refresh("forged"))["errcode"] == 40030
    assert (await refresh(grant["refresh_token"], "wxoa"))["errcode"] == 40030
    await advance(wechat, 31 * 86400)
    assert (await refresh(grant["refresh_token"]))["errcode"] == 42002


async def test_phone_number(wechat: httpx.AsyncClient) -> None:
    token = (await app_token(wechat, "wxmp1"))["access_token"]
    payload = {"appid": "wxmp1", "user": "alice", "phone": "13800138000"}
    code = (await post(wechat, "/sandbox/phone-codes", payload))["code"]
    assert await phone_number(wechat, token, await mint(wechat, "wxmp1", "alice")) == {
        "errcode": 40029  # a login code is no phone code
    }
    info = (await phone_number(wechat, token, code))["phone_info"]
    assert info["phoneNumber"] == info["purePhoneNumber"] == "13800138000"
    assert info["countryCode"] == "86"
    assert info["watermark"]["appid"] == "wxmp1"
    assert await phone_number(wechat, token, code) == {"errcode": 40029}  # single use
    other = (await app_token(wechat, "wxmp2"))["access_token"]
    us = {**payload, "phone": "2025550100", "country_code": "1"}
    code = (await post(wechat, "/sandbox/phone-codes", us))["code"]
    assert await phone_number(wechat, other, code) == {"errcode": 40029}  # another app's code
    assert (await phone_number(wechat, token, code))["phone_info"]["phoneNumber"] == "+12025550100"
    assert await phone_number(wechat, token, "") == {"errcode": 40029}
    assert await phone_number(wechat, "stale", code) == {"errcode": 40001}


async def test_encrypted_data_matches_latest_session_key(wechat: httpx.AsyncClient) -> None:
    session = await login(wechat, "wxmp1", "alice")
    sealed = await sealed_profile(wechat, "wxmp1", "alice")
    data = decrypt_open_data(session["session_key"], sealed["encryptedData"], sealed["iv"])
    verify_open_data(data, appid="wxmp1", openid=session["openid"])
    verify_signature(sealed["rawData"], session["session_key"], sealed["signature"])
    assert data["nickName"] == "alice"
    assert data["unionId"] == session["unionid"]
    assert "openId" not in sealed["rawData"]
    newer = await login(wechat, "wxmp1", "alice")  # wx.login again: the old data is stale
    with pytest.raises(OpenDataError) as exc:
        decrypt_open_data(newer["session_key"], sealed["encryptedData"], sealed["iv"])
    assert exc.value.code == "INVALID_ENCRYPTED_DATA"
    sealed = await sealed_profile(wechat, "wxmp1", "alice", anonymous=True)
    data = decrypt_open_data(newer["session_key"], sealed["encryptedData"], sealed["iv"])
    assert data["nickName"] == "微信用户"
    assert data["openId"] == session["openid"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/sandbox/codes", {"appid": "wxnope", "user": "alice"}, 400),
        ("/sandbox/codes", {"appid": "wxmp1"}, 400),
        ("/sandbox/codes", {"appid": "wxoa", "user": "a", "scope": "snsapi_root"}, 400),
        ("/sandbox/codes", {"appid": "wxmp1", "user": "a", "snapshot": True}, 400),
        ("/sandbox/codes", {"appid": "wxmp1", "user": "a", "errcode": 0}, 400),
        ("/sandbox/codes", {"appid": "wxmp1", "user": "a", "errcode": "x"}, 400),
        ("/sandbox/codes", {"appid": "wxmp1", "user": "a", "fail_times": -1}, 400),
        ("/sandbox/codes", ["not", "an", "object"], 400),
        ("/sandbox/phone-codes", {"appid": "wxoa", "user": "a", "phone": "1"}, 400),
        ("/sandbox/phone-codes", {"appid": "wxmp1", "user": "a", "phone": "+86 1"}, 400),
        ("/sandbox/encrypted-data", {"appid": "wxmp1", "user": "never"}, 409),
        ("/sandbox/encrypted-data", {"appid": "wxmp1", "user": "a", "anonymous": 1}, 400),
        ("/sandbox/clock", {"advance": -5}, 400),
    ],
)
async def test_control_errors(
    wechat: httpx.AsyncClient, path: str, body: object, status: int
) -> None:
    response = await wechat.post(path, json=body)
    assert response.status_code == status
    assert isinstance(response.json()["error"], str)


async def test_control_rejects_non_json(wechat: httpx.AsyncClient) -> None:
    response = await wechat.post("/sandbox/codes", content=b"appid=wxmp1")
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


async def test_stats_count_and_reset(wechat: httpx.AsyncClient) -> None:
    await login(wechat, "wxmp1", "alice")
    await app_token(wechat, "wxmp1")
    calls = (await get(wechat, "/sandbox/stats"))["calls"]
    assert calls["/sns/jscode2session"] == 1
    assert calls["/cgi-bin/stable_token"] == 1
    assert sum(calls.values()) == 2  # control endpoints are not counted
    reset = (await post(wechat, "/sandbox/reset-stats", None))["calls"]
    assert set(reset.values()) == {0}
    assert set(reset) == set(calls)


async def test_latency_applies_to_wechat_endpoints_only() -> None:
    async with client_for(create_sandbox_app(APPS, latency=0.1)) as c:
        started = time.perf_counter()
        code = await mint(c, "wxmp1", "alice")
        assert time.perf_counter() - started < 0.1
        started = time.perf_counter()
        await js_login(c, "wxmp1", code)
        assert time.perf_counter() - started >= 0.1


def test_app_list_is_validated() -> None:
    with pytest.raises(ValueError, match="kind"):
        create_sandbox_app([SandboxApp("wx1", "s", "game", None)])
    with pytest.raises(ValueError, match="duplicate"):
        create_sandbox_app([APPS[0], APPS[0]])
    assert create_sandbox_app(APPS).state.sandbox is not create_sandbox_app(APPS).state.sandbox


async def test_weather_makes_wechat_slow_and_failing_then_good_again(
    wechat: httpx.AsyncClient,
) -> None:
    """The soak's bad WeChat minute: every call late, a share failing with -1 (system busy)."""
    bad = await post(wechat, "/sandbox/weather", {"latency_ms": 50, "failure_rate": 1})
    assert bad == {"latency_ms": 50, "failure_rate": 1.0}
    code = await mint(wechat, "wxmp1", "alice")
    started = time.perf_counter()
    assert (await js_login(wechat, "wxmp1", code))["errcode"] == -1
    assert time.perf_counter() - started >= 0.05
    await post(wechat, "/sandbox/weather", {"latency_ms": 0, "failure_rate": 0})
    assert "openid" in await js_login(wechat, "wxmp1", code)  # the failure spent nothing
    for wrong in ({"failure_rate": 2}, {"latency_ms": -1}, {"latency_ms": True}):
        answer = await wechat.post("/sandbox/weather", json=wrong)
        assert answer.status_code == 400, wrong
