"""Mutation plans (gateway.api.mutation_plan) answer exactly as the reference path does.

As in tests/test_prepared_documents.py, each request goes down the fast path (the view's
prepared documents, here answered by a mutation plan) and down the reference path
(strawberry's full path), on the same state, and the answers must be the same; here also the
audit rows each path wrote, and the log lines of an unexpected error. graphql-core's own run
is counted on the fast path: a plan answers without it, and after the resolver only replays.
The login and refresh documents are sent by variables (as the SDK does) and by literals (as
the benchmark does: ``client: {platform: "bench"}``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import col, select
from strawberry.http import GraphQLRequestData

from gateway.store.models import AuditEvent
from tests.support.harness import Harness
from tests.support.prepared import Paths, both_logins, sdk, seen
from tests.support.trusted import (  # noqa: F401  (the fixture make_gw)
    Make,
    trusted_gateways,
)

LOGIN_LITERALS = (
    "mutation($code: String!) { loginByCode(input: "
    '{app: "shop-mp", code: $code, client: {platform: "bench", channel: "c1"}}) '
    "{ __typename ... on LoginSuccess { accessToken refreshToken isNewAccount account { id } } "
    "... on Error { code message } } }"
)
REFRESH_LITERALS = (
    'mutation($token: String!) { refreshToken(refreshToken: $token, client: {platform: "ios"}) '
    "{ __typename ... on RefreshSuccess { refreshToken accessToken } "
    "... on Error { code message } } }"
)
CLIENT = {"platform": "ios", "channel": "store"}
TOO_LONG = "x" * 20_000  # every string argument is bounded (gateway.api.inputs)


class Counted(Paths):
    """``Paths`` whose fast side counts graphql-core's runs (each run's middleware: a
    replay's, or ``None`` for a plain run)."""

    def __init__(self, gw: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__(gw)
        self.runs: list[Any] = []
        executed = self.fast._executed

        def counted(*args: Any) -> Any:
            self.runs.append(args[-1])
            return executed(*args)

        monkeypatch.setattr(self.fast, "_executed", counted)

    async def both(self, document: str, variables: list[dict[str, Any]]) -> Any:
        """One request down each path, each with its own variables; the fast answer."""
        answers = []
        for prepared, values in zip((self.fast, self.reference), variables, strict=True):
            self.view.prepared = prepared
            answers.append(await self.post({"query": document, "variables": values}, None))
        self.view.prepared = self.fast
        assert seen(answers[0]) == seen(answers[1]), (answers[0].text, answers[1].text)
        return answers[0].json()


@pytest.fixture
async def paths(make_gw: Make, monkeypatch: pytest.MonkeyPatch) -> Counted:
    gw = await make_gw("")
    await gw.login("shop-mp", "ann")  # ann returns in every login below
    return Counted(gw, monkeypatch)


async def test_the_logins_and_refreshes_have_plans(paths: Counted) -> None:
    for document in (sdk("loginByCode"), sdk("refreshToken"), LOGIN_LITERALS, REFRESH_LITERALS):
        found = paths.fast.find(GraphQLRequestData(document, None, None, None, "http"))
        assert found is not None
        assert found.mutation is not None, document
    found = paths.fast.find(GraphQLRequestData(sdk("logout"), None, None, None, "http"))
    assert found is not None
    assert found.mutation is not None  # any one root mutation field of a typed result


async def test_a_returning_login_answers_and_audits_alike(paths: Counted) -> None:
    gw = paths.gw

    async def by_variables() -> dict[str, Any]:
        code = await gw.mint("shop-mp", "ann")
        return {"input": {"app": "shop-mp", "code": code, "client": CLIENT}}

    async def by_literals() -> dict[str, Any]:
        return {"code": await gw.mint("shop-mp", "ann")}

    for document, code, by_hash in (
        (sdk("loginByCode"), by_variables, True),
        (sdk("loginByCode"), by_variables, False),
        (LOGIN_LITERALS, by_literals, False),
    ):
        first = await both_logins(paths, document, code, by_hash)
        assert first["data"]["loginByCode"]["isNewAccount"] is False
        await _audit_rows_alike(gw, "login")
    assert paths.runs == []  # the plans answered every one


async def test_typed_errors_of_a_login_answer_alike(paths: Counted) -> None:
    for variables in (
        {"input": {"app": "shop-mp", "code": "no-such-code", "client": CLIENT}},
        {"input": {"app": "no-such-app", "code": "x", "client": CLIENT}},
        {"input": {"app": "shop-mp", "code": TOO_LONG, "client": CLIENT}},
        {"input": {"app": "shop-mp", "code": "a\x00b", "client": CLIENT}},
        {"input": {"app": "shop-mp", "code": "c", "client": {"platform": "p" * 1000}}},
    ):
        answer = await paths.same(sdk("loginByCode"), variables, by_hash=False)
        assert answer["data"]["loginByCode"]["code"] in {
            "INVALID_CODE",
            "INVALID_INPUT",
            "UNKNOWN_APP",
        }
    for code in ("no-such-code", TOO_LONG, "a\x00b"):
        await paths.same(LOGIN_LITERALS, {"code": code}, by_hash=False)
        literal = LOGIN_LITERALS.replace("($code: String!)", "")
        answer = await paths.same(literal.replace("$code", json.dumps(code)), None, by_hash=False)
        assert answer["data"]["loginByCode"]["code"] in {"INVALID_CODE", "INVALID_INPUT"}
    assert paths.runs == []
    await paths.same(sdk("loginByCode"), {"input": {"app": 42}}, by_hash=False)
    assert paths.runs == [None]  # a variable that does not coerce: graphql-core's, unresolved


async def test_refreshes_answer_and_audit_alike(paths: Counted) -> None:
    documents: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
        (sdk("refreshToken"), lambda t: {"refreshToken": t, "client": CLIENT}),
        (REFRESH_LITERALS, lambda t: {"token": t}),
    ]
    for document, variables in documents:
        tokens = [(await paths.gw.login("shop-mp", "ann"))["refreshToken"] for _ in range(2)]
        answer = await paths.both(document, [variables(t) for t in tokens])
        assert answer["data"]["refreshToken"]["__typename"] == "RefreshSuccess"
        await _audit_rows_alike(paths.gw, "refresh")
        for bad in ("nonsense", TOO_LONG, "a\x00b"):
            answer = await paths.same(document, variables(bad), by_hash=False)
            assert answer["data"]["refreshToken"]["code"] in {
                "INVALID_REFRESH_TOKEN",
                "INVALID_INPUT",
            }
    assert paths.runs == []
    await paths.same(sdk("refreshToken"), {"refreshToken": "t", "client": {"platform": 4}})
    assert paths.runs == [None]


async def test_an_unexpected_error_is_masked_and_logged_alike_never_rerun(
    paths: Counted, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    async def broken(*_: Any, **__: Any) -> None:
        calls.append("refresh")
        raise RuntimeError("the session store is on fire")

    monkeypatch.setattr(paths.gw.app.state.api.sessions, "refresh", broken)
    logged = []
    for prepared in (paths.fast, paths.reference):
        paths.view.prepared = prepared
        caplog.clear()
        body = {"query": REFRESH_LITERALS, "variables": {"token": "t"}}
        logged.append((seen(await paths.post(body, None)), _warnings(caplog)))
    paths.view.prepared = paths.fast
    assert calls == ["refresh", "refresh"]  # once per path: the plan did not rerun it
    assert len(paths.runs) == 1
    assert paths.runs[0] is not None  # the plan's error, replayed by graphql-core
    assert logged[0] == logged[1]
    assert logged[0][0][3]["errors"][0]["message"] == "Internal server error."
    assert any("fire" in f"{w[2]} {w[3]}" for w in logged[0][1])  # logged, with what happened


async def test_a_value_that_does_not_complete_is_replayed_not_rerun(
    paths: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A null for a non-null leaf, after the resolver wrote: graphql-core's error, once."""
    sessions = paths.gw.app.state.api.sessions
    real = sessions.refresh
    calls: list[str] = []

    async def hollow(*args: Any, **kwargs: Any) -> Any:
        calls.append("refresh")
        return dataclasses.replace(await real(*args, **kwargs), access_token=None)

    monkeypatch.setattr(sessions, "refresh", hollow)
    tokens = [(await paths.gw.login("shop-mp", "ann"))["refreshToken"] for _ in range(2)]
    answer = await paths.both(REFRESH_LITERALS, [{"token": t} for t in tokens])
    assert calls == ["refresh", "refresh"]
    assert len(paths.runs) == 1
    assert paths.runs[0] is not None
    assert answer["errors"][0]["path"] == ["refreshToken", "accessToken"]


async def test_the_reference_setting_has_no_mutation_plan(make_gw: Make) -> None:
    gw = await make_gw("\n[performance]\nfast_paths = false\n")
    paths = Paths(gw)
    for document in (sdk("loginByCode"), LOGIN_LITERALS, REFRESH_LITERALS):
        assert paths.fast.find(GraphQLRequestData(document, None, None, None, "http")) is None


def _warnings(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int, str, str]]:
    """Warnings and errors: logger, level, message and the exception's own text."""
    return [
        (r.name, r.levelno, r.getMessage(), str(r.exc_info[1]) if r.exc_info else "")
        for r in caplog.records
        if r.levelno >= 30
    ]


async def _audit_rows_alike(gw: Harness, kind: str) -> None:
    """The two newest audit rows of ``kind`` (one per path) agree on where they came from."""
    async with gw.app.state.services.db.reader() as s:
        query = (
            select(AuditEvent)
            .where(col(AuditEvent.kind) == kind)
            .order_by(col(AuditEvent.created_at).desc())
            .limit(2)
        )
        rows = list((await s.execute(query)).scalars())
    assert len(rows) == 2, rows
    alike = [(r.kind, r.app_key, r.platform, r.channel, r.account_id) for r in rows]
    assert alike[0] == alike[1], alike
    assert alike[0][2] is not None
