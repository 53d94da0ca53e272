"""The playground in a real browser: Debian's headless Chromium driven by Playwright, against a
real `gateway serve` process. Every request to a host other than the gateway is blocked and
recorded, and none may be attempted.

Without a `chromium` executable (or the playwright package) these tests are skipped with a
message; with GATEWAY_TEST_REQUIRE_SERVICES=1 (what .ci/run sets) that is a failure. No
browser is ever downloaded (`playwright install` is not used): apt-get install -y chromium.
GATEWAY_TEST_WRITE_SCREENSHOT=1 refreshes docs/playground.png, the README's picture.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from standardwebhooks import Webhook

from gateway.config import DEFAULT_SQLITE_FILE
from gateway.keyfiles import SECRET_FILE
from gateway.partners.webhooks import WebhookSecrets
from gateway.sandbox_routes import DEMO_PARTNER
from tests.support.browser import TIMEOUT_MS, serve_configured

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

ROOT = Path(__file__).resolve().parent.parent
EDITOR = ".graphiql-query-editor .CodeMirror"


@pytest.fixture
def configured_gateway(browser: Browser, tmp_path: Path) -> Iterator[str]:
    yield from serve_configured(tmp_path)


@dataclass
class Visit:
    page: Page
    ours: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # page errors, CSP violations, failures


OpenPlayground = Callable[[str], Visit]


@pytest.fixture
def open_playground(browser: Browser) -> Iterator[OpenPlayground]:
    contexts = []

    def open_(base: str) -> Visit:
        context = browser.new_context(viewport={"width": 1360, "height": 820})
        contexts.append(context)
        visit = Visit(context.new_page())

        def guard(route: Route) -> None:
            url = route.request.url
            if url.startswith(base + "/"):
                visit.ours.append(url)
                route.continue_()
            else:
                visit.foreign.append(url)
                route.abort()

        context.route("**/*", guard)
        visit.page.on("pageerror", lambda error: visit.problems.append(f"page error: {error}"))
        visit.page.on(
            "console",
            lambda m: (
                visit.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
            ),
        )
        visit.page.goto(f"{base}/graphql")
        visit.page.wait_for_selector(EDITOR, timeout=TIMEOUT_MS)
        return visit

    yield open_
    for context in contexts:
        context.close()


def test_the_playground_loads_everything_from_the_gateway(
    sandbox_gateway: str, open_playground: OpenPlayground
) -> None:
    from playwright.sync_api import expect

    visit: Visit = open_playground(sandbox_gateway)
    page = visit.page
    expect(page.locator(EDITOR)).to_contain_text("# Welcome", timeout=TIMEOUT_MS)
    expect(page.locator(EDITOR)).to_contain_text("mutation LoginByCode")
    tabs = page.locator(".graphiql-tab-button")
    expect(tabs).to_have_count(7)
    assert tabs.all_inner_texts() == [
        "LoginByCode",
        "Viewer",
        "BindUnionId",
        "BindPhoneNumber",
        "LoginWithPassword",
        "RefreshToken",
        "PartnerLookup",
    ]
    # the schema came through introspection, so the docs explorer lists the root types
    page.locator(".graphiql-sidebar button[aria-label='Show Documentation Explorer']").click()
    expect(page.locator(".graphiql-doc-explorer")).to_contain_text("Query", timeout=TIMEOUT_MS)
    assert visit.foreign == []
    assert visit.problems == []
    assets = [u for u in visit.ours if "/playground/assets/" in u]
    assert len(assets) == 8  # 5 scripts, 3 stylesheets: the recorder saw every request
    assert any(u.endswith("/graphql") for u in visit.ours)  # introspection went to the gateway


def test_a_sandbox_user_logs_in_through_the_panel_and_asks_viewer(
    sandbox_gateway: str, open_playground: OpenPlayground
) -> None:
    from playwright.sync_api import expect

    visit: Visit = open_playground(sandbox_gateway)
    page = visit.page
    page.select_option("#pg-app", "shop-mp")
    page.fill("#pg-user", "alice")
    page.click("#pg-login")
    status = page.locator("#pg-status[data-account]")
    expect(status).to_contain_text("logged in to shop-mp", timeout=TIMEOUT_MS)
    account = status.get_attribute("data-account")
    assert account
    expect(page.locator(".graphiql-tab-active .graphiql-tab-button")).to_have_text("Viewer")
    page.click(".graphiql-execute-button")
    result = page.locator(".result-window")
    expect(result).to_contain_text('"viewer"', timeout=TIMEOUT_MS)
    found = re.search(r'"id":\s*"([^"]+)"', result.inner_text())
    assert found
    assert found.group(1) == account

    # the request headers hold the token; refreshing puts a new one there
    page.get_by_role("button", name="Headers").click()
    headers = page.locator(".graphiql-editor-tool .graphiql-editor").last
    expect(headers).to_contain_text("Bearer ey")
    screenshot = page.screenshot()
    if os.environ.get("GATEWAY_TEST_WRITE_SCREENSHOT") == "1":
        (ROOT / "docs" / "playground.png").write_bytes(screenshot)
    before = headers.inner_text()
    page.click("#pg-refresh")
    expect(page.locator("#pg-status")).to_contain_text("Tokens rotated", timeout=TIMEOUT_MS)
    expect(headers).not_to_have_text(before)
    page.click(".graphiql-execute-button")
    expect(result).to_contain_text(account, timeout=TIMEOUT_MS)
    assert visit.foreign == []
    assert visit.problems == []


def test_no_sandbox_panel_when_real_apps_are_configured(
    configured_gateway: str, open_playground: OpenPlayground
) -> None:
    visit: Visit = open_playground(configured_gateway)
    assert visit.page.locator("#sandbox-panel").count() == 0
    assert visit.page.locator("#pg-login").count() == 0
    assert visit.foreign == []
    assert visit.problems == []


PASSWORD = "a long passphrase 2024"  # the LoginWithPassword example's variable
STORED = "() => Object.entries(window.localStorage)"


def test_the_playground_stores_no_header_and_no_variable(
    sandbox_gateway: str, open_playground: OpenPlayground
) -> None:
    """GraphiQL's history and favourites record each run's variables and headers, whatever
    ``shouldPersistHeaders`` says: after a login through the panel, a run with the bearer
    token and one with a password, ``localStorage`` holds neither (nor any variable); what an
    older playground left there is removed on the next visit."""
    from playwright.sync_api import expect

    visit: Visit = open_playground(sandbox_gateway)
    page = visit.page
    page.select_option("#pg-app", "shop-mp")
    page.fill("#pg-user", "storage-probe")
    page.click("#pg-login")
    expect(page.locator("#pg-status[data-account]")).to_contain_text(
        "logged in to shop-mp", timeout=TIMEOUT_MS
    )
    page.click(".graphiql-execute-button")  # the Viewer tab, with the Authorization header
    result = page.locator(".result-window")
    expect(result).to_contain_text('"viewer"', timeout=TIMEOUT_MS)
    page.locator(".graphiql-tab-button", has_text="LoginWithPassword").click()
    active = page.locator(".graphiql-tab-active .graphiql-tab-button")
    expect(active).to_have_text("LoginWithPassword", timeout=TIMEOUT_MS)
    register = page.get_by_role("menuitem", name="RegisterWithPassword")
    for _ in range(5):  # two operations: GraphiQL asks which one (its menu may close on a
        page.click(".graphiql-execute-button")  # re-render right after opening)
        page.wait_for_timeout(300)
        if register.is_visible():
            break
    register.click()
    expect(result).to_contain_text('"registerWithPassword"', timeout=TIMEOUT_MS)

    stored = dict(page.evaluate(STORED))
    text = repr(stored)
    assert "Bearer" not in text, stored
    assert PASSWORD not in text, stored
    assert "storage-probe" not in text, stored  # no variable at all
    assert "shop-mp" not in text, stored

    page.evaluate(
        "() => localStorage.setItem('graphiql:queries', "
        "JSON.stringify({queries: [{query: '{ viewer { id } }', headers: 'Bearer old'}]}))"
    )
    page.reload()
    page.wait_for_selector(EDITOR, timeout=TIMEOUT_MS)
    assert "Bearer" not in repr(page.evaluate(STORED))
    assert visit.foreign == []
    assert visit.problems == []


def test_the_panel_lists_webhook_deliveries_with_their_signature_check(
    sandbox_gateway: str, sandbox_home: Path, open_playground: OpenPlayground
) -> None:
    from playwright.sync_api import expect

    secret = demo_webhook_secret(sandbox_home)
    url = f"{sandbox_gateway}/sandbox/webhooks/{DEMO_PARTNER}"
    body = json.dumps({"type": "account.merged", "timestamp": "2026-12-06T12:00:00Z",
                       "data": {"accountId": "QWNjb3VudDox", "survivorId": "QWNjb3VudDox",
                                "mergedId": "QWNjb3VudDoy"}}).encode()  # fmt: skip
    msg_id, now = "msg_playground_1", datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }
    assert httpx.post(url, content=body, headers=headers).status_code == 204
    forged = {**headers, "webhook-id": "msg_forged"}  # signed for another id
    assert httpx.post(url, content=body, headers=forged).status_code == 401

    visit: Visit = open_playground(sandbox_gateway)
    page = visit.page
    page.click("#pg-webhooks summary")
    items = page.locator("#pg-deliveries > li")  # with the gateway's own real deliveries
    ours, forgery = items.filter(has_text=msg_id), items.filter(has_text="msg_forged")
    expect(ours).to_have_count(1, timeout=TIMEOUT_MS)
    expect(ours).to_contain_text("signature verified")
    expect(ours).to_contain_text("account.merged")
    expect(forgery).to_have_count(1)
    expect(forgery).to_contain_text("signature does not verify")
    # the gateway's deliveries to its own receiver verify too: the forgery is the only one not
    expect(items.filter(has_text="signature does not verify")).to_have_count(1)
    assert visit.foreign == []
    assert visit.problems == []


def demo_webhook_secret(home: Path) -> str:
    """The demo partner's signing secret, opened as the gateway opens it to sign."""
    key = (home / SECRET_FILE).read_text(encoding="utf-8").strip()
    with sqlite3.connect(home / DEFAULT_SQLITE_FILE) as db:
        (sealed,) = db.execute(
            "SELECT webhook_secret_sealed FROM partners WHERE client_id = ?", (DEMO_PARTNER,)
        ).fetchone()
    return WebhookSecrets(key).open(DEMO_PARTNER, sealed)


def test_the_panel_fetches_the_last_sms_code_and_logs_in_with_it(
    sandbox_gateway: str, open_playground: OpenPlayground
) -> None:
    from playwright.sync_api import expect

    visit: Visit = open_playground(sandbox_gateway)
    page = visit.page
    page.select_option("#pg-app", "shop-mp")
    page.click("#pg-sms")
    expect(page.locator("#pg-status")).to_contain_text("SMS code sent to", timeout=TIMEOUT_MS)
    page.click(".graphiql-execute-button")
    expect(page.locator(".result-window")).to_contain_text('"LoginSuccess"', timeout=TIMEOUT_MS)
    assert visit.problems == []


def test_the_panel_scans_a_web_login_code_and_this_browser_is_logged_in(
    sandbox_gateway: str, open_playground: OpenPlayground
) -> None:
    from playwright.sync_api import expect

    visit: Visit = open_playground(sandbox_gateway)
    page = visit.page
    page.select_option("#pg-app", "club-mp")
    page.fill("#pg-user", "dora")
    page.click("#pg-scan")
    status = page.locator("#pg-status[data-account]")
    expect(status).to_contain_text("Scanned and confirmed", timeout=TIMEOUT_MS)
    code = page.locator("#pg-scan-code")
    expect(code).to_be_visible()
    assert (code.get_attribute("src") or "").startswith("data:image/png;base64,")
    assert "club-mp" in (code.get_attribute("alt") or "")
    page.click(".graphiql-execute-button")
    result = page.locator(".result-window")
    expect(result).to_contain_text(status.get_attribute("data-account") or "?", timeout=TIMEOUT_MS)
    assert visit.foreign == []
    assert visit.problems == []
