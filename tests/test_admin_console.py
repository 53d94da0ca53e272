"""The operator console (/admin) over HTTP: operators' login with password and TOTP, the
first login's password change, roles enforced on the server (403), CSRF on every form,
masking for viewers, actions through the rights use case (audited with the operator's name
and reason), throttling of wrong codes, sessions ended with their operator. The same in a
real browser: test_admin_browser.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pyotp
import pytest

from gateway.console.model import Role
from tests.support.accounts import account_uuid
from tests.support.console import NEW_PASSWORD, code, csrf, log_in, make, post
from tests.support.harness import Harness
from tests.support.passwords import registered
from tests.support.sms import (  # noqa: F401  (the fixture gw)
    bind,
    code_login,
    last_code,
    request_code,
    sms_gateway,
)

PHONE = "+8613912345678"


@pytest.fixture
async def browser(gw: Harness) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gw.app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(base_url="https://gw.test", transport=transport) as client:
        yield client


async def test_login_with_password_and_totp_then_a_new_password(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    made = await make(gw.app, "alice", Role.SUPPORT)
    assert set(made) == {"name", "role", "password", "totp_secret"}
    assert (await browser.get("/admin")).headers["location"] == "/admin/login"
    login = await log_in(browser, made, change=False)
    assert login.status_code == 303
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" in cookie
    assert "Path=/admin" in cookie
    # the one-time password must be changed before anything else
    assert (await browser.get("/admin")).headers["location"] == "/admin/password"
    page = await browser.get("/admin/password")
    form = {"csrf_token": csrf(page.text), "current": made["password"]}
    changed = await browser.post(
        "/admin/password", data=form | {"new": NEW_PASSWORD, "repeat": NEW_PASSWORD}
    )
    assert changed.status_code == 303
    home = await browser.get("/admin")
    assert home.status_code == 200
    assert 'href="/admin/audit"' in home.text
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
    assert "unsafe-inline" not in home.headers["content-security-policy"]


async def test_a_code_works_once_and_the_old_password_not_at_all(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    made = await make(gw.app, "bob", Role.VIEWER)
    assert (await log_in(browser, made)).status_code == 303
    browser.cookies.clear()
    again = await post(browser, "/admin/login", {
        "name": "bob", "password": NEW_PASSWORD, "code": code(made["totp_secret"]),
    })  # fmt: skip
    assert again.status_code == 401  # the same code (or an earlier one): refused
    old = await post(browser, "/admin/login", {
        "name": "bob", "password": made["password"], "code": code(made["totp_secret"], 1),
    })  # fmt: skip
    assert old.status_code == 401


async def test_ten_wrong_codes_from_one_address_are_throttled(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    made = await make(gw.app, "carol", Role.ADMIN)
    for _ in range(10):
        wrong = await post(browser, "/admin/login", {
            "name": "carol", "password": made["password"], "code": "000000",
        })  # fmt: skip
        assert wrong.status_code == 401
    right = await log_in(browser, made, change=False)
    assert right.status_code == 429
    assert "set-cookie" not in right.headers or "gw_admin" not in right.headers["set-cookie"]


async def test_forged_csrf_and_foreign_origin_are_refused(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    made = await make(gw.app, "dave", Role.SUPPORT)
    await log_in(browser, made)
    person = await registered(gw, "forged-target")
    account_id = account_uuid(person["account"]["id"])
    page = await browser.get("/admin")
    forged = await browser.post(
        f"/admin/accounts/{account_id}/disable", data={"csrf_token": "0" * 64, "reason": "x"}
    )
    assert forged.status_code == 403
    foreign = await browser.post(
        f"/admin/accounts/{account_id}/disable",
        data={"csrf_token": csrf(page.text), "reason": "x"},
        headers={"origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    assert await gw.viewer_id(person["accessToken"]) is not None  # still active


async def test_support_disables_and_the_audit_names_the_operator(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    made = await make(gw.app, "erin", Role.SUPPORT)
    await log_in(browser, made)
    person = await registered(gw, "to-be-disabled")
    account_id = account_uuid(person["account"]["id"])
    found = await browser.get("/admin", params={"by": "username", "q": "to-be-disabled"})
    assert f"/admin/accounts/{account_id}" in found.text
    page = await browser.get(f"/admin/accounts/{account_id}")
    assert page.status_code == 200
    assert "action-disable" in page.text
    done = await browser.post(
        f"/admin/accounts/{account_id}/disable",
        data={"csrf_token": csrf(page.text), "reason": "ticket 4711"},
    )
    assert done.status_code == 303
    assert await gw.viewer_id(person["accessToken"]) is None  # refused at once
    audit = await browser.get("/admin/audit", params={"operator": "erin"})
    assert "account_disabled" in audit.text
    assert "ticket 4711" in audit.text
    lines = await browser.get("/admin/audit.jsonl", params={"kind": "account_disabled"})
    (event,) = [json.loads(line) for line in lines.text.splitlines()]
    assert (event["platform"], event["ip"]) == ("console", "203.0.113.7")  # the operator's facts
    assert '"operator": "erin"' in lines.text
    assert '"reason": "ticket 4711"' in lines.text


async def test_a_viewer_sees_masked_phones_and_may_not_act(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    person = await code_login(gw, PHONE)
    assert person["__typename"] == "LoginSuccess", person
    account_id = account_uuid(person["account"]["id"])
    made = await make(gw.app, "frank", Role.VIEWER)
    await log_in(browser, made)
    for spelling in ("13912345678", "+8613912345678", "+86 139-1234-5678"):
        found = await browser.get("/admin", params={"by": "phone", "q": spelling})
        assert f"/admin/accounts/{account_id}" in found.text
        assert "12345678" not in found.text  # not even the viewer's own query, echoed
    page = await browser.get(f"/admin/accounts/{account_id}")
    assert "139****5678" in page.text
    assert "12345678" not in page.text
    assert "action-disable" not in page.text
    exported = await browser.get("/admin/audit.jsonl")
    assert "12345678" not in exported.text
    refused = await browser.post(
        f"/admin/accounts/{account_id}/disable",
        data={"csrf_token": csrf(page.text), "reason": "not mine to do"},
    )
    assert refused.status_code == 403
    assert await gw.viewer_id(person["accessToken"]) is not None


async def test_no_end_user_token_opens_the_console(gw: Harness) -> None:
    person = await registered(gw, "not-an-operator")
    transport = httpx.ASGITransport(app=gw.app)
    async with httpx.AsyncClient(base_url="https://gw.test", transport=transport) as client:
        bearer = {"authorization": f"Bearer {person['accessToken']}"}
        assert (await client.get("/admin", headers=bearer)).status_code == 303
        assert (await client.get("/admin/audit.jsonl", headers=bearer)).status_code == 303
        client.cookies.set("gw_admin", person["accessToken"], domain="gw.test")
        assert (await client.get(f"/admin/accounts/{uuid.uuid4()}")).status_code == 303


async def test_disabling_an_operator_ends_its_sessions(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    made = await make(gw.app, "gina", Role.ADMIN)
    await log_in(browser, made)
    assert (await browser.get("/admin")).status_code == 200
    await gw.app.state.admin.console.disable("gina", "test")
    assert (await browser.get("/admin")).headers["location"] == "/admin/login"


def test_operators_add_prints_one_json_object_and_the_code_logs_in(tmp_path: Path) -> None:
    """The CLI on the embedded default database: ``add`` prints only the JSON object;
    ``list``, ``reset`` and ``disable`` act on the same operator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}

    def gateway(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args], cwd=tmp_path, env=env,
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip

    assert gateway("migrate").returncode == 0
    added = gateway("operators", "add", "ops", "--role", "support")
    assert added.returncode == 0, added.stderr
    made = json.loads(added.stdout)  # exactly one JSON object: nothing else on stdout
    assert set(made) == {"name", "role", "password", "totp_secret"}
    assert made["role"] == "support"
    assert len(pyotp.TOTP(made["totp_secret"]).now()) == 6
    assert gateway("operators", "add", "ops", "--role", "admin").returncode == 1
    listed = [json.loads(line) for line in gateway("operators", "list").stdout.splitlines()]
    assert listed == [listed[0]]
    assert listed[0]["name"] == "ops"
    assert not listed[0]["disabled"]
    reset = json.loads(gateway("operators", "reset", "ops").stdout)
    assert reset["password"] != made["password"]
    assert gateway("operators", "disable", "ops").returncode == 0
    assert json.loads(gateway("operators", "list").stdout)["disabled"] is True


def _catalogue(locale: str) -> dict[str, str]:
    from babel.messages.pofile import read_po

    from gateway import i18n

    with i18n.catalogue_path(locale, "admin").open("rb") as fh:
        return {str(m.id): str(m.string) for m in read_po(fh) if m.id}


def test_every_message_the_console_shows_is_in_both_catalogues() -> None:
    import gateway.admin
    import gateway.web

    templates = Path(gateway.web.__file__).parent / "templates" / "admin"
    shown: set[str] = set()
    for template in templates.glob("*.html"):
        shown |= set(re.findall(r'_\("([^"]+)"\)', template.read_text(encoding="utf-8")))
    for source in Path(gateway.admin.__file__).parent.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        shown |= set(re.findall(r'_form\(\s*request,\s*svc,\s*(?:operator,\s*)?"([^"]+)"', text))
    shown |= {"Disable", "viewer", "support", "admin", "status:disabled", "done:disabled"}
    chinese, english = _catalogue("zh-CN"), _catalogue("en")
    assert len(shown) > 40
    assert shown <= set(chinese), shown - set(chinese)
    assert set(chinese) == set(english)
    assert all(chinese.values())
    assert all(english.values())
    assert chinese["Disable"] == "停用"
    assert english["Disable"] == "Disable"


async def test_partners_page_disables_rotates_and_audits(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    partners = gw.app.state.services.partners
    old_secret = await partners.add("crm-console", ["shop-mp"], [], ["accounts:lookup"])
    viewer = await make(gw.app, "hank", Role.VIEWER)
    await log_in(browser, viewer)
    page = await browser.get("/admin/partners")
    assert page.status_code == 200
    assert "crm-console" in page.text
    assert "accounts:lookup" in page.text
    refused = await browser.post(
        "/admin/partners/disable",
        data={"csrf_token": csrf(page.text), "partner": "crm-console", "reason": "x"},
    )
    assert refused.status_code == 403
    browser.cookies.clear()
    admin = await make(gw.app, "ivy", Role.ADMIN)
    await log_in(browser, admin)
    page = await browser.get("/admin/partners")
    rotated = await browser.post(
        "/admin/partners/rotate",
        data={"csrf_token": csrf(page.text), "partner": "crm-console", "reason": "leaked"},
    )
    assert rotated.status_code == 200
    new_secret = re.search(r'id="new-secret">.*?<span class="mono">([^<]+)</span>', rotated.text)
    assert new_secret is not None
    assert await partners.authenticate("crm-console", old_secret) is None
    assert await partners.authenticate("crm-console", new_secret.group(1)) is not None
    disabled = await browser.post(
        "/admin/partners/disable",
        data={"csrf_token": csrf(page.text), "partner": "crm-console", "reason": "contract ended"},
    )
    assert disabled.status_code == 303
    assert (await partners.get("crm-console")).disabled
    audit = await browser.get("/admin/audit.jsonl", params={"operator": "ivy"})
    kinds = [json.loads(line)["kind"] for line in audit.text.splitlines()]
    assert "partner_disabled" in kinds
    assert "partner_secret_rotated" in kinds


async def test_dashboard_and_apps_pages(gw: Harness, browser: httpx.AsyncClient) -> None:
    await gw.login("shop-mp", "dash-1")
    await gw.login("shop-mp", "dash-2")
    await registered(gw, "dash-3")
    made = await make(gw.app, "jack", Role.VIEWER)
    await log_in(browser, made)
    dashboard = await browser.get("/admin/dashboard", params={"lang": "en"})
    assert dashboard.status_code == 200
    assert "<svg" in dashboard.text
    assert 'aria-label="Logins per hour: shop-mp"' in dashboard.text
    assert "<script" not in dashboard.text
    apps = await browser.get("/admin/apps")
    assert apps.status_code == 200
    assert "wxtestshop000001" in apps.text
    home = await browser.get("/admin")
    for path in ("/admin/dashboard", "/admin/partners", "/admin/apps", "/admin/audit"):
        assert f'href="{path}"' in home.text


async def _act(
    browser: httpx.AsyncClient, account_id: uuid.UUID, action: str, **form: str
) -> httpx.Response:
    page = await browser.get(f"/admin/accounts/{account_id}")
    return await browser.post(
        f"/admin/accounts/{account_id}/{action}", data={"csrf_token": csrf(page.text), **form}
    )


async def test_support_revokes_unlinks_and_admin_requests_and_exports(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    person = await registered(gw, "kim")
    token = person["accessToken"]
    account_id = account_uuid(person["account"]["id"])
    assert (await request_code(gw, "+8613800138000", "BIND"))["__typename"].endswith("Success")
    sms = await last_code(gw.client, "+8613800138000")
    assert (await bind(gw, token, "+8613800138000", sms))["__typename"].endswith("Success")
    made = await make(gw.app, "kate", Role.SUPPORT)
    await log_in(browser, made)
    assert (await _act(browser, account_id, "revoke", reason="lost phone")).status_code == 303
    assert await gw.viewer_id(token) is None
    shown = await gw.app.state.api.rights.show(account_id)
    username, phone = sorted(shown["identities"], key=lambda i: i["kind"] != "username")
    gone = await _act(browser, account_id, "unlink", identity=phone["id"], reason="new number")
    assert gone.status_code == 303
    last = await _act(browser, account_id, "unlink", identity=username["id"], reason="x")
    assert last.status_code == 400  # the last way in stays
    no_reason = await _act(browser, account_id, "revoke", reason="")
    assert no_reason.status_code == 400
    support_only = await _act(browser, account_id, "request-deletion", reason="asked")
    assert support_only.status_code == 403
    browser.cookies.clear()
    admin = await make(gw.app, "leo", Role.ADMIN)
    await log_in(browser, admin)
    requested = await _act(browser, account_id, "request-deletion", reason="asked by phone")
    assert requested.status_code == 303
    assert (await gw.app.state.api.rights.show(account_id))["account"]["deletionDueAt"]
    cancelled = await _act(browser, account_id, "cancel-deletion", reason="changed their mind")
    assert cancelled.status_code == 303
    assert not (await gw.app.state.api.rights.show(account_id))["account"]["deletionDueAt"]
    exported = await _act(browser, account_id, "export", reason="PIPL request 12")
    assert exported.status_code == 200
    assert exported.json()["account"]["id"] == str(account_id)
    lines = await browser.get("/admin/audit.jsonl", params={"account": str(account_id)})
    events = [json.loads(line) for line in lines.text.splitlines()]
    by_kind = {e["kind"]: e["detail"] for e in events}
    assert by_kind["sessions_revoked"]["operator"] == "kate"
    assert by_kind["unlink"]["reason"] == "new number"
    assert by_kind["deletion_requested"]["reason"] == "asked by phone"
    assert by_kind["deletion_cancelled"]["operator"] == "leo"
    assert by_kind["account_exported"]["reason"] == "PIPL request 12"


async def test_an_idle_session_ends(gw: Harness, browser: httpx.AsyncClient) -> None:
    """After ``[admin] idle_minutes`` (default 30) without a request, the cookie opens nothing."""
    from datetime import timedelta

    from sqlalchemy import update

    from gateway.store.models import OperatorSessionRow, utcnow

    made = await make(gw.app, "olga", Role.VIEWER)
    await log_in(browser, made)
    assert (await browser.get("/admin")).status_code == 200
    async with gw.app.state.services.db.transaction() as s:  # 29 minutes pass: still on
        await s.execute(
            update(OperatorSessionRow).values(last_seen_at=utcnow() - timedelta(minutes=29))
        )
    assert (await browser.get("/admin")).status_code == 200
    async with gw.app.state.services.db.transaction() as s:  # 31 minutes pass: over
        await s.execute(
            update(OperatorSessionRow).values(last_seen_at=utcnow() - timedelta(minutes=31))
        )
    assert (await browser.get("/admin")).headers["location"] == "/admin/login"


async def test_admins_manage_operators_from_the_console(gw: Harness) -> None:
    transport = httpx.ASGITransport(app=gw.app)
    async with (
        httpx.AsyncClient(base_url="https://gw.test", transport=transport) as admin,
        httpx.AsyncClient(base_url="https://gw.test", transport=transport) as newcomer,
    ):
        await log_in(admin, await make(gw.app, "pat", Role.ADMIN))
        page = await admin.get("/admin/operators")
        assert page.status_code == 200
        added = await admin.post(
            "/admin/operators/add",
            data={"csrf_token": csrf(page.text), "name": "quinn", "role": "support",
                  "reason": "new hire"},
        )  # fmt: skip
        assert added.status_code == 200
        password = re.search(r'id="made-password">([^<]+)<', added.text)
        secret = re.search(r'id="made-totp">([^<]+)<', added.text)
        assert password is not None
        assert secret is not None
        made = {"name": "quinn", "password": password.group(1), "totp_secret": secret.group(1)}
        assert (await log_in(newcomer, made)).status_code == 303
        assert (await newcomer.get("/admin")).status_code == 200
        assert (await newcomer.get("/admin/operators")).status_code == 403  # support
        disabled = await admin.post(
            "/admin/operators/disable",
            data={"csrf_token": csrf(page.text), "name": "quinn", "reason": "left"},
        )
        assert disabled.status_code == 303
        assert (await newcomer.get("/admin")).headers["location"] == "/admin/login"
        lines = await admin.get("/admin/audit.jsonl", params={"operator": "pat"})
        kinds = {json.loads(line)["kind"] for line in lines.text.splitlines()}
        assert {"operator_added", "operator_disabled"} <= kinds


async def test_the_account_page_lists_its_partner_events(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    from gateway.events.dispatch import dispatch_once
    from gateway.partners.entitlements import Entitlements

    partners = gw.app.state.services.partners
    await partners.add("crm-events", ["shop-mp"], [], ["accounts:lookup"])
    person = await gw.login("shop-mp", "evented")
    account_id = account_uuid(person["account"]["id"])
    db = gw.app.state.services.db
    await dispatch_once(db, await partners.all(), Entitlements(gw.config.apps))
    await log_in(browser, await make(gw.app, "ruth", Role.VIEWER))
    page = await browser.get(f"/admin/accounts/{account_id}")
    table = page.text.split('id="partner-events"')[1].split("</table>")[0]
    assert "crm-events" in table
    assert "account.created" in table
