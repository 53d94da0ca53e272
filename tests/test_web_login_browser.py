"""The hosted login page in Debian's Chromium (Playwright), against a real `gateway serve`: the
language, no CSP violation, password login and its cookie, CSRF, open redirects, logout, a
disable and logout everywhere, and a sandbox scan. No request may leave the gateway's origin.
(tests/support/browser.py starts the browser and the server.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.accounts import account_uuid
from tests.support.browser import TIMEOUT_MS, serve_configured

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Route

PASSWORD = "violet-Tractor-88"
REGISTER = """mutation($u: String!, $p: String!) {
  registerWithPassword(input: {username: $u, password: $p, app: "shop-mp",
                               client: {platform: "web"}}) {
    __typename ... on LoginSuccess { accessToken account { id } } ... on Error { code }
  }
}"""
LOGOUT = "mutation { logout(everywhere: true) { __typename } }"


@dataclass
class Tab:
    context: BrowserContext
    page: Page
    foreign: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # page errors, console errors (CSP)


Open = Callable[..., Tab]


@pytest.fixture
def configured(browser: Browser, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A gateway with real apps (so Secure cookies) on plain-http loopback, and its folder."""
    for base in serve_configured(tmp_path):
        yield base, tmp_path


@pytest.fixture
def open_tab(browser: Browser) -> Iterator[Open]:
    contexts: list[BrowserContext] = []

    def open_(base: str, path: str = "/login", *, locale: str = "zh-CN") -> Tab:
        context = browser.new_context(locale=locale, viewport={"width": 420, "height": 860})
        contexts.append(context)
        tab = Tab(context, context.new_page())

        def guard(route: Route) -> None:
            if route.request.url.startswith(base + "/") or route.request.url.startswith("data:"):
                route.continue_()
            else:
                tab.foreign.append(route.request.url)
                route.abort()

        context.route("**/*", guard)
        tab.page.on("pageerror", lambda error: tab.problems.append(f"page error: {error}"))
        tab.page.on(
            "console",
            lambda m: tab.problems.append(f"console: {m.text}") if m.type == "error" else None,
        )
        tab.page.goto(base + path)
        return tab

    yield open_
    for context in contexts:
        context.close()


def _register(base: str, username: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{base}/graphql", json={"query": REGISTER, "variables": {"u": username, "p": PASSWORD}}
    )
    result: dict[str, Any] = answer.json()["data"]["registerWithPassword"]
    assert result["__typename"] == "LoginSuccess", result
    return result


def _log_in(tab: Tab, username: str, password: str = PASSWORD) -> None:
    tab.page.fill("#username", username)
    tab.page.fill("#password", password)
    with tab.page.expect_navigation():
        tab.page.click("#panel-password button[type=submit]")


def _session_cookie(tab: Tab) -> dict[str, Any] | None:
    found = [c for c in tab.context.cookies() if c["name"] == "gw_session"]
    return dict(found[0]) if found else None


def test_the_page_is_english_by_default_chinese_by_header_and_english_by_the_switch(
    configured: tuple[str, Path], open_tab: Open
) -> None:
    base, _ = configured
    other = open_tab(base, locale="fr-FR")  # a language the gateway does not speak
    assert other.page.get_attribute("html", "lang") == "en"
    assert other.page.inner_text("h1") == "Log in"
    chinese = open_tab(base)  # the browser's language: zh-CN
    assert chinese.page.get_attribute("html", "lang") == "zh-CN"
    assert chinese.page.inner_text("h1") == "登录"
    chinese.page.click("a[hreflang=en]")
    assert chinese.page.get_attribute("html", "lang") == "en"
    chinese.page.goto(base + "/login")  # remembered
    assert chinese.page.inner_text("h1") == "Log in"
    english = open_tab(base, locale="en-US")
    assert english.page.get_attribute("html", "lang") == "en"
    assert other.foreign == chinese.foreign == english.foreign == []
    assert other.problems == chinese.problems == english.problems == []


def test_a_password_login_sets_the_cookie_and_lands_on_next(
    configured: tuple[str, Path], open_tab: Open
) -> None:
    base, _ = configured
    _register(base, "browser-user")
    tab = open_tab(base, "/login?next=/healthz")
    _log_in(tab, "browser-user")
    assert tab.page.url == f"{base}/healthz"
    cookie = _session_cookie(tab)
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True  # not a sandbox: Secure, plain-http loopback included
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert abs(cookie["expires"] - (time.time() + 7 * 86400)) < 120
    tab.page.goto(base + "/login?next=/readyz")  # logged in: on at once
    assert tab.page.url == f"{base}/readyz"
    assert tab.problems == []
    assert tab.foreign == []


def test_a_foreign_origin_or_a_post_without_cookies_logs_nobody_in(
    configured: tuple[str, Path],
    open_tab: Open,
    browser: Browser,
) -> None:
    base, _ = configured
    _register(base, "csrf-user")
    tab = open_tab(base)
    token = tab.page.get_attribute("input[name=csrf_token]", "value")
    form: dict[str, str | float | bool] = {
        "csrf_token": token or "",
        "username": "csrf-user",
        "password": PASSWORD,
    }
    foreign = tab.context.request.post(
        base + "/login", form=form, headers={"origin": "https://evil.example"}, max_redirects=0
    )
    assert foreign.status == 403
    stranger = browser.new_context()
    try:
        bare = stranger.request.post(base + "/login", form=form, max_redirects=0)
        assert bare.status == 403
        assert not [c for c in stranger.cookies() if c["name"] == "gw_session"]
    finally:
        stranger.close()
    assert _session_cookie(tab) is None


def test_an_open_redirect_next_is_refused(configured: tuple[str, Path], open_tab: Open) -> None:
    base, _ = configured
    _register(base, "redirect-user")
    tab = open_tab(base, "/login?next=//evil.example/steal")
    _log_in(tab, "redirect-user")
    assert tab.page.url == f"{base}/login/done"
    assert tab.foreign == []


def test_logout_ends_the_browser_session(configured: tuple[str, Path], open_tab: Open) -> None:
    base, _ = configured
    _register(base, "logout-user")
    tab = open_tab(base)
    _log_in(tab, "logout-user")
    assert tab.page.url == f"{base}/login/done"
    tab.page.goto(base + "/logout")
    tab.page.click("form[action='/logout'] button")
    tab.page.wait_for_load_state()
    tab.page.goto(base + "/login/done")
    assert tab.page.url == f"{base}/login"  # nobody is logged in: the form again
    assert tab.problems == []


def test_a_disabled_accounts_session_no_longer_counts(
    configured: tuple[str, Path], open_tab: Open
) -> None:
    base, folder = configured
    account = _register(base, "disabled-user")
    tab = open_tab(base)
    _log_in(tab, "disabled-user")
    assert tab.page.url == f"{base}/login/done"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({"GATEWAY_CONFIG": str(folder / "gateway.toml"), "TEST_CLUB_SECRET": "x" * 22})
    account_id = str(account_uuid(account["account"]["id"]))
    command = [sys.executable, "-m", "gateway", "accounts", "disable", account_id]
    subprocess.run([*command, "--reason", "test"], cwd=folder, env=env, check=True)
    tab.page.goto(base + "/login/done")
    assert tab.page.url == f"{base}/login"


def test_logout_everywhere_ends_the_browser_session(
    configured: tuple[str, Path], open_tab: Open
) -> None:
    base, _ = configured
    account = _register(base, "everywhere-user")
    tab = open_tab(base)
    _log_in(tab, "everywhere-user")
    assert tab.page.url == f"{base}/login/done"
    headers = {"authorization": f"Bearer {account['accessToken']}"}
    httpx.post(f"{base}/graphql", json={"query": LOGOUT}, headers=headers).raise_for_status()
    tab.page.goto(base + "/login/done")
    assert tab.page.url == f"{base}/login"


def test_a_sandbox_scan_logs_the_browser_in_without_a_csp_violation(
    sandbox_gateway: str,
    open_tab: Open,
) -> None:
    base = sandbox_gateway
    tab = open_tab(base, "/login?next=/healthz", locale="en-US")
    tab.page.click("#tab-scan")
    code = tab.page.wait_for_selector("#scan-code[data-scene]", timeout=TIMEOUT_MS)
    assert code is not None
    assert (code.get_attribute("src") or "").startswith("data:image/")
    scene = code.get_attribute("data-scene")
    with tab.page.expect_navigation(url=f"{base}/healthz", timeout=TIMEOUT_MS):
        played = httpx.get(f"{base}/sandbox/scan", params={"scene": scene, "user": "scan-user"})
        assert played.status_code == 200, played.text
    cookie = _session_cookie(tab)
    assert cookie is not None
    assert cookie["value"].endswith(".wechat_miniprogram_scan")
    assert cookie["secure"] is False  # sandbox mode
    assert tab.problems == []
    assert tab.foreign == []


def _sms_log_in(base: str, page: Page, phone: str) -> None:
    """The phone tab, as a person uses it: number, "send code", the code, "log in"."""
    page.fill("#phone", phone)
    with page.expect_navigation():
        page.click("#sms-send")
    messages = httpx.get(f"{base}/sandbox/sms", params={"phone": phone}).json()["messages"]
    page.fill("#code", messages[-1]["code"])
    with page.expect_navigation(url=f"{base}/healthz", timeout=TIMEOUT_MS):
        page.click("#sms-login")


def test_an_sms_login_on_the_phone_tab_without_a_csp_violation(
    sandbox_gateway: str,
    open_tab: Open,
) -> None:
    base = sandbox_gateway
    tab = open_tab(base, "/login?next=/healthz", locale="en-US")
    assert tab.page.is_hidden("#panel-sms")
    tab.page.click("#tab-sms")
    assert tab.page.is_visible("#panel-sms")
    assert tab.page.is_hidden("#panel-password")
    _sms_log_in(base, tab.page, "13600136001")
    cookie = _session_cookie(tab)
    assert cookie is not None
    assert cookie["value"].endswith(".sms")
    assert tab.problems == []
    assert tab.foreign == []


def test_the_phone_tab_works_without_javascript(
    sandbox_gateway: str,
    browser: Browser,
) -> None:
    base = sandbox_gateway
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    try:
        page = context.new_page()
        page.goto(f"{base}/login?next=/healthz")
        with page.expect_navigation():
            page.click("#tab-sms")
        assert page.is_visible("#panel-sms")
        _sms_log_in(base, page, "13600136002")
        found = [c for c in context.cookies() if c["name"] == "gw_session"]
        assert found
        assert found[0]["value"].endswith(".sms")
    finally:
        context.close()
