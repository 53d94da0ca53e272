"""The hosted login page's phone tab over HTTP (httpx through the real app, sandbox mode: the
code is read from ``/sandbox/sms``): a code sent, a wrong one refused, the right one logs the
browser in; the limits and CSRF as the page shows them. In Chromium: test_web_sms_browser.py."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from gateway.store.db import create_engine
from gateway.store.models import AuditEvent
from gateway.web.browser import COOKIE
from gateway.web.pages import CSRF_FIELD
from tests.support.harness import Configure, Harness, running
from tests.support.sms import last_code, sms_gateway  # noqa: F401  (the fixture gw)
from tests.support.web import (  # noqa: F401  (the fixture browser)
    BASE,
    PHONE,
    csrf_token,
    gateway_browser,
    page_browser,
    send_code,
    sms_log_in,
)


async def test_the_tab_is_there_only_when_the_gateway_sends_sms(
    browser: httpx.AsyncClient, database_url: str, configure: Configure
) -> None:
    page = await browser.get("/login")
    assert 'id="tab-sms"' in page.text
    assert 'id="panel-sms" role="tabpanel" aria-labelledby="tab-sms" hidden' in page.text
    opened = await browser.get("/login", params={"method": "sms"})
    assert 'id="panel-sms" role="tabpanel" aria-labelledby="tab-sms">' in opened.text
    assert 'action="/login/sms/code"' in opened.text
    async with running(configure(database_url)) as plain, page_browser(plain.app) as other:
        without = await other.get("/login", params={"method": "sms"})
        assert without.status_code == 200
        assert "tab-sms" not in without.text
        assert "panel-password" in without.text
        assert "/login/sms" not in without.text
        page = await other.get("/login")
        form = {CSRF_FIELD: csrf_token(page.text), "phone": PHONE}
        refused = await other.post("/login/sms/code", data=form, headers={"origin": BASE})
        assert refused.status_code == 404


async def test_a_code_is_sent_and_the_right_one_logs_the_browser_in(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    sent = await send_code(browser, "139 0013 9000", next_="/account?x=1")
    assert sent.status_code == 200, sent.text
    assert "If the number can receive SMS, a code is on its way." in sent.text
    assert 'action="/login/sms"' in sent.text
    assert 'name="phone" value="139 0013 9000"' in sent.text  # the number as typed, kept
    code = await last_code(gw.client, PHONE)
    assert re.fullmatch(r"\d{6}", code)
    answer = await sms_log_in(browser, code, next_="/account?x=1")
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/account?x=1"
    assert COOKIE in browser.cookies
    done = await browser.get("/login")
    assert done.status_code == 303  # logged in: straight on
    again = await sms_log_in(browser, code)  # single use
    assert again.status_code == 401
    assert "The SMS code is wrong, used or expired" in again.text


async def test_a_wrong_code_is_refused_on_the_page(gw: Harness, browser: httpx.AsyncClient) -> None:
    await send_code(browser)
    right = await last_code(gw.client, PHONE)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for code in (wrong, "12ab56", ""):
        answer = await sms_log_in(browser, code)
        assert answer.status_code == 401, answer.text
        assert "The SMS code is wrong, used or expired; request a new one." in answer.text
        assert 'id="panel-sms" role="tabpanel" aria-labelledby="tab-sms">' in answer.text
    assert COOKIE not in browser.cookies
    assert (await sms_log_in(browser, right)).status_code == 303


async def test_a_second_code_within_a_minute_is_rate_limited_on_the_page(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    assert (await send_code(browser)).status_code == 200
    second = await send_code(browser)
    assert second.status_code == 429
    assert int(second.headers["retry-after"]) > 0
    match = re.search(r"Too many codes for this number; retry in (\d+) seconds.", second.text)
    assert match, second.text
    assert 0 < int(match.group(1)) <= 60
    assert 'action="/login/sms"' in second.text  # the first code may still be typed
    chinese = await send_code(browser, **{"accept-language": "zh-CN"})
    assert chinese.status_code == 429
    assert "秒" in chinese.text
    messages = (await gw.client.get("/sandbox/sms", params={"phone": PHONE})).json()
    assert len(messages["messages"]) == 1


async def test_an_unknown_and_a_bad_number_answer_as_the_page_says(
    browser: httpx.AsyncClient,
) -> None:
    unknown = await send_code(browser, "13700137001")
    assert unknown.status_code == 200  # same answer, known or not
    assert "If the number can receive SMS" in unknown.text
    bad = await send_code(browser, "12")
    assert bad.status_code == 400
    assert "not a phone number" in bad.text or "not a valid phone number" in bad.text
    foreign = await send_code(browser, "+1 415 555 2671")
    assert foreign.status_code == 400
    assert "+1" in foreign.text


async def test_a_cookieless_or_foreign_post_sends_nothing_and_logs_nobody_in(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    foreign = await send_code(browser, origin="https://evil.example")
    cross = await send_code(browser, **{"sec-fetch-site": "cross-site"})
    for answer in (foreign, cross):
        assert answer.status_code == 403
    messages = (await gw.client.get("/sandbox/sms", params={"phone": PHONE})).json()
    assert messages["messages"] == []
    assert (await send_code(browser)).status_code == 200
    code = await last_code(gw.client, PHONE)
    page = await browser.get("/login", params={"method": "sms"})
    form = {CSRF_FIELD: csrf_token(page.text), "phone": PHONE, "code": code}
    async with page_browser(gw.app) as stranger:
        replayed = await stranger.post("/login/sms", data=form, headers={"origin": BASE})
        assert replayed.status_code == 403
        assert COOKIE not in stranger.cookies
    evil = await browser.post("/login/sms", data=form, headers={"origin": "https://evil.example"})
    assert evil.status_code == 403
    assert COOKIE not in browser.cookies
    assert (await sms_log_in(browser, code)).status_code == 303  # the refusals spent nothing


async def test_a_language_link_of_an_answered_post_leads_back_to_the_tab(
    browser: httpx.AsyncClient,
) -> None:
    answered = await send_code(browser, next_="/account")
    assert 'href="/login/sms/code?lang=zh-CN"' in answered.text
    back = await browser.get("/login/sms/code", params={"lang": "zh-CN", "next": "/account"})
    assert back.status_code == 303
    assert back.headers["location"] == "/login?lang=zh-CN&next=%2Faccount&method=sms"
    page = await browser.get(back.headers["location"])
    assert "手机号登录" in page.text
    assert 'aria-labelledby="tab-sms">' in page.text


async def test_a_next_off_the_gateway_lands_on_the_logged_in_page(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    await send_code(browser, next_="https://evil.example/")
    answer = await sms_log_in(browser, await last_code(gw.client, PHONE), next_="//evil.example/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login/done"


async def test_sign_up_off_refuses_an_unknown_number_on_the_page(
    database_url: str, configure: Configure
) -> None:
    config = configure(database_url, sms={"provider": "sandbox", "signup": False})
    async with running(config) as gw, page_browser(gw.app) as browser:
        assert (await send_code(browser)).status_code == 200
        refused = await sms_log_in(browser, await last_code(gw.client, PHONE))
        assert refused.status_code == 401
        assert "No account has this phone number" in refused.text
        assert COOKIE not in browser.cookies


async def test_the_sms_login_is_audited(
    gw: Harness, browser: httpx.AsyncClient, database_url: str
) -> None:
    await send_code(browser)
    await sms_log_in(
        browser, "000000" if await last_code(gw.client, PHONE) != "000000" else "000001"
    )
    await sms_log_in(browser, await last_code(gw.client, PHONE))
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(col(AuditEvent.kind), col(AuditEvent.detail)))).all()
    finally:
        await engine.dispose()
    details: dict[str, list[dict[str, Any]]] = {}
    for kind, detail in rows:
        details.setdefault(kind, []).append(detail)
    assert [d["reason"] for d in details["login_failed"] if d.get("door") == "sms"] == [
        "INVALID_CODE"
    ]
    assert [d for d in details["register"] if d.get("door") == "sms"]
    (web,) = details["web_login"]
    assert web["amr"] == ["sms"]
    assert web["door"] == "sms"
