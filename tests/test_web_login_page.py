"""The hosted login page over HTTP (httpx through the real app): what it shows, its headers and
cookies, CSRF, open redirects, password and WeChat logins, logout. The same page in Chromium:
test_web_login_browser.py."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.web.browser import COOKIE
from gateway.web.documents import PAGE_DOCUMENTS, STATUS
from gateway.web.pages import CSRF_FIELD
from tests.support.harness import Configure, Harness, running
from tests.support.passwords import GOOD_PASSWORD, registered
from tests.support.sessions import logout
from tests.support.web import (  # noqa: F401  (the fixture browser)
    BASE,
    csrf_token,
    gateway_browser,
    page_browser,
)


async def _submit(
    browser: httpx.AsyncClient,
    username: str,
    password: str = GOOD_PASSWORD,
    next_: str = "/account",
    **headers: str,
) -> httpx.Response:
    page = await browser.get("/login", params={"next": next_})
    form = {CSRF_FIELD: csrf_token(page.text), "username": username, "password": password}
    return await browser.post(
        "/login", data={**form, "next": next_}, headers={"origin": BASE, **headers}
    )


async def test_the_page_speaks_english_by_default_and_chinese_when_asked(
    browser: httpx.AsyncClient,
) -> None:
    english = await browser.get("/login")
    assert english.status_code == 200
    assert '<html lang="en">' in english.text
    assert "Password login" in english.text
    chinese = await browser.get("/login", headers={"accept-language": "zh-CN,zh;q=0.8"})
    assert '<html lang="zh-CN">' in chinese.text
    assert "密码登录" in chinese.text
    csp = english.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert english.headers["x-frame-options"] == "DENY"


async def test_default_locale_zh_cn_makes_the_page_chinese_unless_english_is_asked(
    database_url: str, configure: Configure
) -> None:
    config = configure(database_url, i18n={"default_locale": "zh-CN"})
    async with running(config) as chinese_gw, page_browser(chinese_gw.app) as client:
        chinese = await client.get("/login")
        english = await client.get("/login", headers={"accept-language": "en"})
    assert '<html lang="zh-CN">' in chinese.text
    assert "密码登录" in chinese.text
    assert '<html lang="en">' in english.text
    assert "Password login" in english.text


async def test_a_password_login_sets_the_session_cookie_and_lands_on_next(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    await registered(gw, "page-user")
    answer = await _submit(browser, "page-user", next_="/account?tab=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/account?tab=1"
    (cookie,) = [c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")]
    attributes = {p.strip().split("=")[0].lower() for p in cookie.split(";")[1:]}
    assert attributes == {"httponly", "max-age", "path", "samesite", "secure"}
    assert "Max-Age=604800" in cookie
    assert "SameSite=lax" in cookie
    # logged in: the page sends the browser on at once, unless a login is asked for
    again = await browser.get("/login", params={"next": "/orders"})
    assert again.status_code == 303
    assert again.headers["location"] == "/orders"
    forced = await browser.get("/login", params={"next": "/orders", "prompt": "login"})
    assert forced.status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "/\r\nSet-Cookie: x=1",
        "///evil.example",
        " //evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\t/evil.example",
    ],
)
async def test_a_next_off_the_gateway_lands_on_the_logged_in_page(
    gw: Harness, browser: httpx.AsyncClient, target: str
) -> None:
    await registered(gw, "redirected")
    answer = await _submit(browser, "redirected", next_=target)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login/done"
    assert "logged in" in (await browser.get("/login/done", headers={"accept-language": "en"})).text


async def test_a_foreign_origin_or_a_post_without_the_pages_cookies_logs_nobody_in(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    await registered(gw, "csrf-target")
    foreign = await _submit(browser, "csrf-target", origin="https://evil.example")
    cross_site = await _submit(browser, "csrf-target", **{"sec-fetch-site": "cross-site"})
    page = await browser.get("/login")
    form = {CSRF_FIELD: csrf_token(page.text), "username": "csrf-target", "password": GOOD_PASSWORD}
    async with page_browser(gw.app) as stranger:
        replayed = await stranger.post("/login", data=form, headers={"origin": BASE})
    for answer in (foreign, cross_site, replayed):
        assert answer.status_code == 403
        assert COOKIE not in answer.headers.get("set-cookie", "")
    assert COOKIE not in browser.cookies


async def test_failures_are_messages_on_the_page_never_a_500(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    await registered(gw, "typo-user")
    wrong = await _submit(browser, "typo-user", "not-the-password", **{"accept-language": "en"})
    assert wrong.status_code == 401
    assert "Wrong username or password." in wrong.text
    assert 'value="typo-user"' in wrong.text
    empty = await _submit(browser, "", "", **{"accept-language": "zh-CN"})
    assert empty.status_code == 400
    assert "请输入用户名和密码。" in empty.text
    assert "Enter your username and password." in (await _submit(browser, "", "")).text
    codes = [(await _submit(browser, "typo-user", f"wrong-{i}")).status_code for i in range(11)]
    assert 429 in codes  # the password use case's throttling holds here too
    assert set(codes) <= {401, 429}


async def test_logout_needs_a_post_with_the_pages_token_and_ends_the_session(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    await registered(gw, "logging-out")
    await _submit(browser, "logging-out")
    confirm = await browser.get("/logout")
    assert confirm.status_code == 200
    assert (await browser.get("/login")).status_code == 303  # a GET logged nobody out
    forged = await browser.post("/logout", data={}, headers={"origin": BASE})
    assert forged.status_code == 403
    done = await browser.post("/logout", data={CSRF_FIELD: csrf_token(confirm.text)})
    assert done.status_code == 200
    assert (await browser.get("/login")).status_code == 200


async def test_logout_everywhere_ends_the_browsers_session(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    account = await registered(gw, "api-and-page")
    await _submit(browser, "api-and-page")
    assert (await browser.get("/login/done")).status_code == 200
    await logout(gw, account["accessToken"], everywhere=True)
    assert (await browser.get("/login/done")).status_code == 303


async def test_an_official_accounts_oauth_logs_the_browser_in_inside_wechat(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    agent = {"user-agent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0.50"}
    page = await browser.get("/login", params={"next": "/me"}, headers=agent)
    assert page.status_code == 303
    started = await browser.get(page.headers["location"], headers=agent)
    assert started.status_code == 303
    sent = urlsplit(started.headers["location"])
    assert sent.netloc == "open.weixin.qq.com"
    query = {k: v[0] for k, v in parse_qs(sent.query).items()}
    assert query["scope"] == "snsapi_userinfo"
    assert query["redirect_uri"] == f"{BASE}/login/wechat/callback?app=news-oa"
    code = await gw.mint("news-oa", "oa-reader", scope="snsapi_userinfo")
    params = {"app": "news-oa", "code": code, "state": query["state"]}
    # someone else's browser with this callback URL: nothing
    async with page_browser(gw.app) as stranger:
        stolen = await stranger.get("/login/wechat/callback", params=params)
    assert stolen.status_code == 400
    assert COOKIE not in stolen.headers.get("set-cookie", "")
    back = await browser.get("/login/wechat/callback", params=params)
    assert back.status_code == 303
    assert back.headers["location"] == "/me"
    assert COOKIE in browser.cookies
    assert browser.cookies[COOKIE].endswith(".wechat_oauth")


async def test_an_unknown_wechat_app_is_an_error_page(browser: httpx.AsyncClient) -> None:
    for app in ("nope", "shop-mp"):  # a mini-program has no browser OAuth
        answer = await browser.get("/login/wechat", params={"app": app})
        assert answer.status_code == 400
        assert "location" not in answer.headers


async def test_the_page_lets_its_form_post_redirect_on_where_next_leads(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    """OIDC's authorize sends the browser on to the site; the login page's form-action must
    allow it (Chromium checks it on every redirect after a form POST)."""

    def origins(target: str) -> list[str]:
        return ["https://rp.example"] if target.startswith("/oauth/authorize") else []

    gw.app.state.web.redirect_origins = origins
    onward = await browser.get("/login", params={"next": "/oauth/authorize?client_id=x"})
    assert onward.headers["content-security-policy"].endswith(
        "form-action 'self' https://rp.example"
    )
    plain = await browser.get("/login", params={"next": "/account"})
    assert plain.headers["content-security-policy"].endswith("form-action 'self'")


async def test_logging_in_again_ends_the_browsers_previous_session(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    await registered(gw, "twice")
    await _submit(browser, "twice")
    first = browser.cookies[COOKIE]
    page = await browser.get("/login", params={"prompt": "login"})
    form = {CSRF_FIELD: csrf_token(page.text), "username": "twice", "password": GOOD_PASSWORD}
    assert (await browser.post("/login", data=form)).status_code == 303
    assert browser.cookies[COOKIE] != first
    assert (await browser.get("/login/done")).status_code == 200
    browser.cookies.set(COOKIE, first, domain="gw.test")
    assert (await browser.get("/login/done")).status_code == 303  # the old one is over


async def test_the_scan_tabs_documents_run_where_only_trusted_documents_do(
    database_url: str, configure: Configure
) -> None:
    config = configure(database_url, api={"trusted_documents_only": True})
    async with running(config) as trusted:
        page = await trusted.client.get("/login")
        for document in PAGE_DOCUMENTS:
            assert json.dumps(document) in page.text  # what the page's script sends
        status = {"query": STATUS, "variables": {"ticket": "no-such-ticket"}}
        ran = await trusted.client.post("/graphql", json=status)
        assert ran.status_code == 200, ran.text
        assert ran.json()["data"]["webLoginStatus"]["status"] == "EXPIRED"
        other = await trusted.client.post("/graphql", json={"query": "{ __typename }"})
        assert other.json()["errors"][0]["extensions"]["code"] == "UNTRUSTED_DOCUMENT"
