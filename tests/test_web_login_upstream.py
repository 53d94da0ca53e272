"""Scan to log in with real apps configured: the code comes from WeChat's
``wxacode.getUnlimited`` (its failures typed, a stale app token refreshed once), the binding
cookie is Secure, and a listed site's page may send it (CORS with credentials)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from gateway.weblogin.service import BINDING_COOKIE
from tests.support.harness import Configure, MakeConfig, running
from tests.support.weblogin import START

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
SITE = "https://shop.example.com"

Answer = Callable[[httpx.Request], httpx.Response]


def wechat(code: Answer) -> tuple[httpx.MockTransport, list[dict[str, object]]]:
    """WeChat answering app tokens, and ``code`` for the code; the code requests it saw."""
    seen: list[dict[str, object]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/cgi-bin/stable_token":
            return httpx.Response(200, json={"access_token": f"tok{len(seen)}", "expires_in": 7200})
        seen.append({"token": request.url.params["access_token"], **json.loads(request.content)})
        return code(request)

    return httpx.MockTransport(handle), seen


def image(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})


async def test_the_code_comes_from_wxacode_and_the_cookie_is_secure(
    database_url: str, make_config: MakeConfig
) -> None:
    transport, seen = wechat(image)
    config = make_config(database_url, cors_origins=SITE)
    async with running(config, transport=transport) as gw:
        answer = await gw.client.post(
            "/graphql",
            json={"query": START, "variables": {"app": "shop-mp"}},
            headers={"origin": SITE},
        )
        started = answer.json()["data"]["startWebLogin"]
        assert started["qrImage"].startswith("data:image/png;base64,")
        (sent,) = seen
        assert sent["scene"] == started["scene"]
        assert (sent["page"], sent["check_path"]) == ("pages/weblogin/confirm", True)
        cookie = answer.headers["set-cookie"].lower()
        assert cookie.startswith(BINDING_COOKIE)
        assert "secure" in cookie
        assert "httponly" in cookie
        assert answer.headers["access-control-allow-credentials"] == "true"
        assert answer.headers["access-control-allow-origin"] == SITE


async def test_wechat_refusing_the_page_is_a_typed_error(
    database_url: str, make_config: MakeConfig
) -> None:
    def unpublished(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"errcode": 41030, "errmsg": "invalid page"})

    transport, _ = wechat(unpublished)
    async with running(make_config(database_url), transport=transport) as gw:
        body = await gw.gql(START, {"app": "shop-mp"})
    assert body["data"]["startWebLogin"] == {
        "__typename": "UpstreamError",
        "code": "APP_MISCONFIGURED",
    }


async def test_a_stale_app_token_is_refreshed_once(
    database_url: str, make_config: MakeConfig
) -> None:
    def stale_first(request: httpx.Request) -> httpx.Response:
        if request.url.params["access_token"] == "tok0":
            return httpx.Response(200, json={"errcode": 40001, "errmsg": "invalid credential"})
        return image(request)

    transport, seen = wechat(stale_first)
    async with running(make_config(database_url), transport=transport) as gw:
        body = await gw.gql(START, {"app": "shop-mp"})
    assert body["data"]["startWebLogin"]["__typename"] == "WebLoginStarted"
    assert [s["token"] for s in seen] == ["tok0", "tok1"]


async def test_an_answer_that_is_no_image_is_an_upstream_error(
    database_url: str, make_config: MakeConfig
) -> None:
    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>", headers={"content-type": "image/png"})

    transport, _ = wechat(garbage)
    async with running(make_config(database_url), transport=transport) as gw:
        body = await gw.gql(START, {"app": "shop-mp"})
    assert body["data"]["startWebLogin"]["code"] == "UPSTREAM_ERROR"


async def test_codes_started_per_address_are_limited(
    database_url: str, configure: Configure
) -> None:
    transport, seen = wechat(image)
    config = configure(database_url, web_scan={"starts_per_minute": 2})
    async with running(config, transport=transport) as gw:
        answers = [await gw.gql(START, {"app": "shop-mp"}) for _ in range(3)]
    kinds = [a["data"]["startWebLogin"]["__typename"] for a in answers]
    assert kinds == ["WebLoginStarted", "WebLoginStarted", "RateLimitedError"]
    assert len(seen) == 2  # the refused start cost WeChat nothing
