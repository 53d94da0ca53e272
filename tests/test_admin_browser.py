"""The operator console in a real browser (Debian's Chromium via Playwright) against two real
`gateway serve` processes on one PostgreSQL database: an operator made by the CLI logs in with
password and TOTP, changes the one-time password, finds a person by username and by phone,
disables the account (the person's token is refused at once by the *other* process), and the
audit page shows the action with the operator's name and reason; a viewer sees masked phone
numbers and gets 403 posting a disable; a forged CSRF token is refused; wrong TOTP codes are
refused and then throttled. Every request to another host is blocked and recorded: none may
be attempted. GATEWAY_TEST_WRITE_SCREENSHOT=1 refreshes docs/console-account.png
(scripts/console-screenshot).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pyotp
import pytest

from tests.support.harness import PG_URL, skip_or_fail
from tests.support.passwords import GOOD_PASSWORD, REGISTER
from tests.support.processes import Cluster, cluster, own_database

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Route

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "console-account.png"
NATIONAL, E164 = "13912345678", "+8613912345678"
NEW_PASSWORD = "Quiet-Harbour-4471"
SMS = """
mutation($phone: String!, $purpose: SmsPurpose!, $app: String!) {
  requestSmsCode(input: {phone: $phone, purpose: $purpose, app: $app}) { __typename }
}
"""
BIND = """
mutation($phone: String!, $code: String!) {
  bindPhoneBySms(input: {phone: $phone, code: $code}) { __typename }
}
"""
PROFILE = """
mutation($nickname: String!) { updateProfile(input: {nickname: $nickname}) { __typename } }
"""


@pytest.fixture(scope="module")
def gateways(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two gateways on one PostgreSQL database of their own (invalidations by NOTIFY), the
    sandbox SMS provider for phone numbers. (Takes ``browser``: a missing Chromium skips
    before any process starts.)"""
    if not PG_URL:
        skip_or_fail("PostgreSQL")
    assert PG_URL
    settings = '\n[sms]\nprovider = "sandbox"\n'
    with own_database(PG_URL) as url:
        yield from _cluster(url, tmp_path_factory.mktemp("console"), settings)


def _cluster(url: str, home: Path, settings: str) -> Iterator[Cluster]:
    with cluster(url, None, home, settings) as running:
        yield running


def _cli(gw: Cluster, *args: str) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "operators", *args],
        env=gw.env, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    made: dict[str, str] = json.loads(done.stdout)  # the one JSON object on stdout
    return made


def _gql(base: str, query: str, variables: dict[str, Any], token: str | None = None) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    answer = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables},
                        headers=headers, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]


def _person(gw: Cluster) -> dict[str, Any]:
    """Wang registers with a username on gateway 0 and binds his phone number by SMS."""
    base = gw.gateways[0]
    client = {"platform": "ios", "channel": "appstore", "deviceParam": "iPhone15,2"}
    variables = {"username": "wang.xm", "password": GOOD_PASSWORD, "app": "shop-mp",
                 "client": client}  # fmt: skip
    registered = _gql(base, REGISTER, variables)["registerWithPassword"]
    assert registered["__typename"] == "LoginSuccess", registered
    token = registered["accessToken"]
    sent = _gql(base, SMS, {"phone": NATIONAL, "purpose": "BIND", "app": "shop-mp"}, token)
    assert sent["requestSmsCode"]["__typename"] == "RequestSmsCodeSuccess", sent
    messages = httpx.get(f"{base}/sandbox/sms", params={"phone": E164}).json()["messages"]
    bound = _gql(base, BIND, {"phone": NATIONAL, "code": messages[-1]["code"]}, token)
    assert bound["bindPhoneBySms"]["__typename"] == "BindPhoneBySmsSuccess", bound
    _gql(base, PROFILE, {"nickname": "Wang Xiaoming"}, token)
    person: dict[str, Any] = registered
    return person


class Guarded:
    """A browser context whose requests to anything but ``base`` are blocked and recorded."""

    def __init__(self, browser: Browser, base: str) -> None:
        self.base = base
        self.foreign: list[str] = []
        self.problems: list[str] = []
        self.context: BrowserContext = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._guard)
        self.page: Page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(message.text)

    def _guard(self, route: Route) -> None:
        if route.request.url.startswith(self.base + "/"):
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort()

    def log_in(self, made: dict[str, str], password: str, code: str) -> int:
        page = self.page
        page.goto(f"{self.base}/admin/login?lang=en")
        page.fill("#name", made["name"])
        page.fill("#password", password)
        page.fill("#code", code)
        with page.expect_navigation() as navigation:
            page.click("main button[type=submit]")
        response = navigation.value
        return response.status if response else 0

    def first_login(self, made: dict[str, str]) -> None:
        assert self.log_in(made, made["password"], pyotp.TOTP(made["totp_secret"]).now()) == 200
        assert self.page.url.endswith("/admin/password")
        self.page.fill("#current", made["password"])
        self.page.fill("#new", NEW_PASSWORD)
        self.page.fill("#repeat", NEW_PASSWORD)
        with self.page.expect_navigation():
            self.page.click("main button[type=submit]")
        assert self.page.url == f"{self.base}/admin", self.page.content()

    def search(self, by: str, value: str) -> None:
        self.page.goto(f"{self.base}/admin")
        self.page.select_option("#by", by)
        self.page.fill("#q", value)
        self.page.click("form[role=search] button[type=submit]")
        self.page.wait_for_load_state()

    def csrf(self) -> str:
        token = self.page.locator("input[name=csrf_token]").first.get_attribute("value")
        assert token
        return token


def _refused_on(base: str, token: str, seconds: float) -> None:
    """The other process refuses ``token`` (401) within ``seconds`` (polled, no sleeping)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = httpx.post(f"{base}/graphql", json={"query": "{ viewer { id } }"},
                            headers={"authorization": f"Bearer {token}"})  # fmt: skip
        if answer.status_code == 401:
            return
        assert time.monotonic() < deadline, "the other process still accepts the token"


def test_support_finds_a_person_and_disables_the_account(
    browser: Browser, gateways: Cluster
) -> None:
    from playwright.sync_api import expect

    person = _person(gateways)
    token = person["accessToken"]
    base, other = gateways.gateways
    assert httpx.post(f"{other}/graphql", json={"query": "{ viewer { id } }"},
                      headers={"authorization": f"Bearer {token}"}).status_code == 200  # fmt: skip
    made = _cli(gateways, "add", "alice", "--role", "support")
    visit = Guarded(browser, base)
    try:
        visit.page.goto(f"{base}/admin")
        assert visit.page.url.endswith("/admin/login")  # no session: the login page
        visit.first_login(made)
        visit.search("username", "wang.xm")
        link = visit.page.locator("table a[href^='/admin/accounts/']")
        expect(link).to_have_count(1)
        account_url = link.get_attribute("href")
        visit.search("phone", NATIONAL)
        assert (
            visit.page.locator("table a[href^='/admin/accounts/']").get_attribute("href")
            == account_url
        )
        visit.page.click(f"a[href='{account_url}']")
        expect(visit.page.locator("#account-status")).to_have_text("Active")
        expect(visit.page.locator("body")).to_contain_text(E164)  # support sees the number
        if os.environ.get("GATEWAY_TEST_WRITE_SCREENSHOT") == "1":
            visit.page.screenshot(path=str(SCREENSHOT), full_page=False)
        visit.page.fill("#reason-disable", "ticket 4711: phone stolen")
        visit.page.locator("#action-disable button").click()
        expect(visit.page.locator("#account-status")).to_have_text("Disabled")
        _refused_on(other, token, 5.0)
        visit.page.click("nav a[href='/admin/audit']")
        row = visit.page.locator("table.events tr", has_text="account_disabled")
        expect(row).to_contain_text("alice")
        expect(row).to_contain_text("ticket 4711: phone stolen")
        assert visit.foreign == []
        assert visit.problems == []
    finally:
        visit.context.close()


def test_a_viewer_sees_masked_numbers_and_may_not_disable(
    browser: Browser, gateways: Cluster
) -> None:
    from playwright.sync_api import expect

    base = gateways.gateways[0]
    found = httpx.get(f"{base}/sandbox/sms", params={"phone": E164})
    if not found.json()["messages"]:
        _person(gateways)
    made = _cli(gateways, "add", "victor", "--role", "viewer")
    visit = Guarded(browser, base)
    try:
        visit.first_login(made)
        visit.search("phone", E164)
        visit.page.click("table a[href^='/admin/accounts/']")
        expect(visit.page.locator("body")).to_contain_text("139****5678")
        assert "12345678" not in visit.page.content()
        assert visit.page.locator("#action-disable").count() == 0
        visit.page.set_viewport_size({"width": 390, "height": 844})  # a phone: tables scroll
        width = visit.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the account page is {width} px wide on a phone"
        account_url = visit.page.url
        refused = visit.page.request.post(
            f"{account_url}/disable", form={"csrf_token": visit.csrf(), "reason": "curious"}
        )
        assert refused.status == 403
        assert visit.foreign == []
        assert visit.problems == []
    finally:
        visit.context.close()


def test_forged_csrf_and_wrong_codes_are_refused(browser: Browser, gateways: Cluster) -> None:
    from playwright.sync_api import expect

    base = gateways.gateways[1]  # its own throttle counts (no Redis): the others stay free
    made = _cli(gateways, "add", "mallory", "--role", "admin")
    visit = Guarded(browser, base)
    try:
        visit.first_login(made)
        forged = visit.page.request.post(f"{base}/admin/logout", form={"csrf_token": "0" * 64})
        assert forged.status == 403
        visit.page.goto(f"{base}/admin")
        assert visit.page.url == f"{base}/admin"  # still logged in
        visit.context.clear_cookies()
        for _ in range(10):
            assert visit.log_in(made, NEW_PASSWORD, "000000") == 401
            expect(visit.page.locator(".error")).to_contain_text("Wrong name, password or code")
        code = pyotp.TOTP(made["totp_secret"]).now()
        assert visit.log_in(made, NEW_PASSWORD, code) == 429
        expect(visit.page.locator(".error")).to_contain_text("Too many failed attempts")
        assert re.search(r"/admin/login", visit.page.url)
        assert visit.foreign == []
    finally:
        visit.context.close()
