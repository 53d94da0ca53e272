"""WeChat misbehaving: every odd answer is a typed result, retries only where they may help.

WeChat here is an ``httpx.MockTransport`` whose handler scripts each answer and counts calls.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.harness import LOGIN, Harness, MakeConfig, metric, running

SESSION_KEY = base64.b64encode(bytes(range(16))).decode()
GOOD = {"openid": "o-fault-user", "session_key": SESSION_KEY, "unionid": "u-fault-user"}
SECRET = "shop-secret-0123456789"

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeWeChat:
    """Answers in order (the last one repeats); records every request it saw."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def script(self, *answers: Answer) -> None:
        self.answers = list(answers)

    @property
    def calls(self) -> int:
        return len(self.requests)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        # a fresh copy each time: one scripted answer may be served to several attempts
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def ok(body: Any = None) -> httpx.Response:
    return httpx.Response(200, json=GOOD if body is None else body)


def errcode(code: Any) -> httpx.Response:
    return httpx.Response(200, json={"errcode": code, "errmsg": "scripted rid: 0-0"})


@pytest.fixture
async def wechat(
    database_url: str, make_config: MakeConfig
) -> AsyncIterator[tuple[Harness, FakeWeChat]]:
    fake = FakeWeChat(ok())
    async with running(make_config(database_url), transport=httpx.MockTransport(fake)) as gw:
        yield gw, fake


async def login(gw: Harness, code: str) -> dict[str, Any]:
    body = await gw.gql(LOGIN, {"app": "shop-mp", "code": code, "client": {"platform": "ios"}})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["loginByCode"]
    return result


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("scripted timeout", request=request)


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("scripted refusal", request=request)


async def test_a_plain_success_reaches_wechat_with_the_right_query(
    wechat: tuple[Harness, FakeWeChat],
) -> None:
    gw, fake = wechat
    result = await login(gw, "code-ok")
    assert result["__typename"] == "LoginSuccess"
    assert fake.calls == 1
    sent = fake.requests[0]
    assert sent.url.path == "/sns/jscode2session"
    assert sent.url.params["appid"] == gw.appid("shop-mp")
    assert sent.url.params["secret"] == SECRET
    assert sent.url.params["js_code"] == "code-ok"
    assert sent.url.params["grant_type"] == "authorization_code"


async def test_json_served_as_text_plain_is_read(wechat: tuple[Harness, FakeWeChat]) -> None:
    """WeChat really labels jscode2session answers text/plain: the body decides, not the type."""
    gw, fake = wechat
    raw = json.dumps(GOOD).encode()
    fake.script(httpx.Response(200, content=raw, headers={"content-type": "text/plain"}))
    assert (await login(gw, "code-plain"))["__typename"] == "LoginSuccess"


async def test_concurrent_retries_of_one_code_share_one_failing_exchange(
    wechat: tuple[Harness, FakeWeChat],
) -> None:
    gw, fake = wechat
    fake.script(_timeout)
    results = await asyncio.gather(*(login(gw, "code-shared") for _ in range(3)))
    assert {r["code"] for r in results} == {"UPSTREAM_UNAVAILABLE"}
    assert fake.calls == 3  # one exchange with its three attempts, not three exchanges


UNREADABLE: dict[str, httpx.Response] = {
    "html-200": httpx.Response(200, text="<html><body>502 Bad Gateway</body></html>"),
    "form-encoded": httpx.Response(200, content=b"openid=o1&session_key=abc"),
    "empty-body": httpx.Response(200, content=b""),
    "json-array": httpx.Response(200, json=[GOOD]),
    "json-string": httpx.Response(200, json="openid"),
    "missing-openid": ok({"session_key": SESSION_KEY}),
    "empty-openid": ok({"openid": "", "session_key": SESSION_KEY}),
    "numeric-openid": ok({"openid": 12345, "session_key": SESSION_KEY}),
    "huge-openid": ok({"openid": "o" * 600, "session_key": SESSION_KEY}),
    "missing-session-key": ok({"openid": "o1"}),
    "null-session-key": ok({"openid": "o1", "session_key": None}),
    "session-key-not-base64": ok({"openid": "o1", "session_key": "not base64 at all!"}),
    "session-key-15-bytes": ok(
        {"openid": "o1", "session_key": base64.b64encode(b"fifteen bytes!!").decode()}
    ),
    "session-key-32-bytes": ok(
        {"openid": "o1", "session_key": base64.b64encode(bytes(32)).decode()}
    ),
    "session-key-non-ascii": ok({"openid": "o1", "session_key": "ключключключключключключ"}),
    "unionid-not-a-string": ok({"openid": "o1", "session_key": SESSION_KEY, "unionid": ["u1"]}),
    "errcode-string": errcode("40029"),
    "errcode-null": errcode(None),
    "errcode-float": errcode(0.5),
    "http-404": httpx.Response(404, text="not found"),
    "http-403-with-good-body": httpx.Response(403, json={"errcode": 0, **GOOD}),
}


async def test_unreadable_answers_are_upstream_error_after_one_call(
    wechat: tuple[Harness, FakeWeChat],
) -> None:
    """One gateway, many odd answers (one app start for all: they are independent codes)."""
    gw, fake = wechat
    for case, answer in UNREADABLE.items():
        before = fake.calls
        fake.script(answer)
        result = await login(gw, f"code-{case}")
        assert (result["__typename"], result["code"]) == ("UpstreamError", "UPSTREAM_ERROR"), case
        assert result["message"], case
        assert SESSION_KEY not in result["message"], case
        assert fake.calls == before + 1, case


@pytest.mark.parametrize(
    ("answer", "attempts"),
    [
        (httpx.Response(502, text="<html>bad gateway</html>"), 3),
        (httpx.Response(429), 3),
        (_timeout, 3),
        (_refused, 3),
        (errcode(-1), 3),
    ],
    ids=["http-502", "http-429", "read-timeout", "connect-error", "busy"],
)
async def test_transient_failures_are_retried_then_unavailable(
    wechat: tuple[Harness, FakeWeChat], answer: Answer, attempts: int
) -> None:
    gw, fake = wechat
    fake.script(answer)
    result = await login(gw, "code-flaky")
    assert (result["__typename"], result["code"]) == ("UpstreamError", "UPSTREAM_UNAVAILABLE")
    assert fake.calls == attempts
    assert {r.url.params["js_code"] for r in fake.requests} == {"code-flaky"}


async def test_busy_then_success_logs_in_after_two_calls(
    wechat: tuple[Harness, FakeWeChat],
) -> None:
    gw, fake = wechat
    fake.script(errcode(-1), ok())
    result = await login(gw, "code-busy-once")
    assert result["__typename"] == "LoginSuccess"
    assert fake.calls == 2


async def test_timeout_then_success_logs_in(wechat: tuple[Harness, FakeWeChat]) -> None:
    gw, fake = wechat
    fake.script(_timeout, _refused, ok())
    result = await login(gw, "code-slow")
    assert result["__typename"] == "LoginSuccess"
    assert fake.calls == 3


@pytest.mark.parametrize(
    ("code", "typename", "expected"),
    [
        (40029, "CodeRejectedError", "INVALID_CODE"),
        (40163, "CodeRejectedError", "CODE_USED"),
        (40226, "LoginBlockedError", "RISK_BLOCKED"),
    ],
)
async def test_code_verdicts_are_never_retried(
    wechat: tuple[Harness, FakeWeChat], code: int, typename: str, expected: str
) -> None:
    gw, fake = wechat
    fake.script(errcode(code), ok())
    result = await login(gw, f"code-{code}")
    assert (result["__typename"], result["code"]) == (typename, expected)
    assert fake.calls == 1


async def test_transient_failure_is_not_cached_but_a_verdict_is(
    wechat: tuple[Harness, FakeWeChat],
) -> None:
    gw, fake = wechat
    fake.script(errcode(-1))
    first = await login(gw, "code-again")
    assert first["code"] == "UPSTREAM_UNAVAILABLE"
    assert fake.calls == 3

    fake.script(ok())
    second = await login(gw, "code-again")
    assert second["__typename"] == "LoginSuccess"
    assert fake.calls == 4

    # the success is remembered: a retry of the same code gets the same account, no call
    third = await login(gw, "code-again")
    assert third["account"]["id"] == second["account"]["id"]
    assert fake.calls == 4

    fake.script(errcode(40029), ok())
    verdict = await login(gw, "code-judged")
    assert verdict["code"] == "INVALID_CODE"
    assert fake.calls == 5
    again = await login(gw, "code-judged")
    assert again["code"] == "INVALID_CODE"
    assert fake.calls == 5


async def test_failures_are_audited_with_the_reason(
    wechat: tuple[Harness, FakeWeChat],
) -> None:
    from sqlalchemy import text

    from gateway.store.db import create_engine

    gw, fake = wechat
    fake.script(errcode(40226))
    await login(gw, "code-risky")
    engine = create_engine(gw.config.database_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT kind, app_key, platform, detail FROM audit_events"))
            ).all()
    finally:
        await engine.dispose()
    assert [(r.kind, r.app_key, r.platform) for r in rows] == [("login_failed", "shop-mp", "ios")]
    assert "RISK_BLOCKED" in str(rows[0].detail)
    assert "code-risky" not in str(rows[0].detail)


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    parts = [caplog.text]
    for record in caplog.records:
        parts += [record.getMessage(), repr(record.args), str(record.exc_info or "")]
    return "\n".join(parts)


async def test_secret_code_and_session_key_never_reach_the_logs(
    wechat: tuple[Harness, FakeWeChat], caplog: pytest.LogCaptureFixture
) -> None:
    """Root at DEBUG, httpx left as the app set it: success, retries, a verdict, an outage."""
    gw, fake = wechat
    caplog.set_level(logging.DEBUG)
    fake.script(_timeout, ok())
    assert (await login(gw, "code-log-ok"))["__typename"] == "LoginSuccess"
    fake.script(errcode(-1), errcode(40029))
    assert (await login(gw, "code-log-bad"))["code"] == "INVALID_CODE"
    fake.script(_refused)
    assert (await login(gw, "code-log-down"))["code"] == "UPSTREAM_UNAVAILABLE"
    assert fake.calls == 2 + 2 + 3

    logged = _logged(caplog)
    assert any(r.name.startswith("gateway") for r in caplog.records), "nothing was logged"
    for needle in (SECRET, "code-log-ok", "code-log-bad", "code-log-down", SESSION_KEY):
        assert needle not in logged, needle
    # httpx would log each WeChat URL (secret and js_code in the query) at INFO: the app
    # holds it at WARNING even when the root logger is at DEBUG
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]


async def _waiting(gw: Harness) -> float:
    """``gateway_requests_waiting`` as /metrics reports it."""
    return metric((await gw.client.get("/metrics")).text, "gateway_requests_waiting")


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    """Yield to the event loop until ``check()`` holds (the other tasks' steps run), or fail."""
    for _ in range(2_000):
        if await check():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


@asynccontextmanager
async def _writes_blocked(database_url: str) -> AsyncIterator[None]:
    """Another client holds the database's write lock (SQLite's file lock; PostgreSQL's lock
    on the sessions table) until the block ends."""
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[1]
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql", 1))
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE login_sessions IN EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def test_requests_beyond_the_in_progress_limit_wait_their_turn(
    database_url: str, make_config: MakeConfig
) -> None:
    """One slot: a login held up by the database keeps it, so a second request waits at the
    door (counted), and runs once the first is done."""
    config = make_config(database_url, max_in_progress=1)
    async with running(config, transport=httpx.MockTransport(FakeWeChat(ok()))) as gw:
        async with _writes_blocked(database_url):
            first = asyncio.create_task(login(gw, "code-first"))
            for _ in range(100):  # until a probe finds the slot taken (the login at its write)
                second = asyncio.create_task(gw.gql("{ __typename }"))

                async def settled() -> bool:
                    return second.done() or await _waiting(gw) == 1

                await _until(settled)
                if not second.done():
                    break
            assert not second.done()
            assert not first.done()
        assert (await first)["__typename"] == "LoginSuccess"
        assert (await second)["data"] == {"__typename": "Query"}
        assert await _waiting(gw) == 0


class HeldWeChat:
    """Answers every code at once, except codes starting with "slow": those wait for
    ``release``. ``codes`` lists the codes that reached it, in order."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.codes: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        code = request.url.params["js_code"]
        self.codes.append(code)
        if code.startswith("slow"):
            await self.release.wait()
        return ok({**GOOD, "openid": f"o-{code}", "unionid": f"u-{code}"})

    async def holding(self, gw: Harness) -> asyncio.Task[dict[str, Any]]:
        """A login whose code WeChat holds, once it is there."""
        slow = asyncio.create_task(login(gw, "slow-code"))

        async def at_wechat() -> bool:
            return self.codes == ["slow-code"]

        await _until(at_wechat)
        return slow


async def test_a_request_waiting_on_wechat_lends_its_slot(
    database_url: str, make_config: MakeConfig
) -> None:
    """One slot, and WeChat not answering: token checks and other logins still run (a slow
    WeChat must not stall everything behind logins that wait on it)."""
    wechat = HeldWeChat()
    config = make_config(database_url, max_in_progress=1)
    async with running(config, transport=httpx.MockTransport(wechat)) as gw:
        slow = await wechat.holding(gw)
        async with asyncio.timeout(30):  # a failure, not a hang, if the slot were kept
            fast = await login(gw, "fast-code")
        assert fast["__typename"] == "LoginSuccess"
        assert await gw.viewer_id(fast["accessToken"]) == fast["account"]["id"]
        assert not slow.done()
        wechat.release.set()
        assert (await slow)["__typename"] == "LoginSuccess"
        assert await _waiting(gw) == 0


async def test_wechat_calls_beyond_the_wechat_concurrency_wait_their_turn(
    database_url: str, make_config: MakeConfig
) -> None:
    """One call on the wire at a time: a second login waits for the first one's call, then
    makes its own."""
    wechat = HeldWeChat()
    config = make_config(database_url, wechat_concurrency=1)
    async with running(config, transport=httpx.MockTransport(wechat)) as gw:
        slow = await wechat.holding(gw)
        second = asyncio.create_task(login(gw, "second-code"))
        for _ in range(500):  # turns of the loop: plenty for a login to reach WeChat
            await asyncio.sleep(0)
        assert wechat.codes == ["slow-code"]
        assert not second.done()
        wechat.release.set()
        results = [await slow, await second]
        assert [r["__typename"] for r in results] == ["LoginSuccess", "LoginSuccess"]
        assert wechat.codes == ["slow-code", "second-code"]
