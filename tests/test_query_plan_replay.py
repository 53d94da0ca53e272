"""A query plan that gives up never runs a resolver twice (gateway.api.plan).

A plan answers successes only; at an error graphql-core answers the request. It used to run
it from the start, so every field the plan had resolved was resolved again: a ``checkSession``
beside a field that failed asked WeChat twice in one request. graphql-core now gets what the
plan's resolvers gave (their values, or the exceptions they raised) through a middleware, and
calls only the resolvers the plan never reached. The answer is the reference path's, error for
error (``Paths.same``).
"""

from __future__ import annotations

from typing import Any

import pytest
from strawberry.http import GraphQLRequestData

from tests.support.harness import Harness
from tests.support.prepared import Paths

BESIDE = "{ checkSession { valid wechatSessionValid } viewer { id sessions { id } } }"
CHECKSESSION = "/wxa/checksession"


async def test_a_check_beside_a_failing_field_asks_wechat_once(
    gw: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = (await gw.login("shop-mp", "wx-replay"))["accessToken"]
    paths = Paths(gw)
    found = paths.fast.find(GraphQLRequestData(BESIDE, None, None, None, "http"))
    assert found is not None
    assert found.plan is not None  # the fast path's first try is the plan
    calls: list[str] = []

    async def broken(*_: Any) -> None:
        calls.append("sessions")
        raise RuntimeError("the session store is on fire")

    monkeypatch.setattr(gw.app.state.api.sessions, "active", broken)
    before = await gw.upstream_calls(CHECKSESSION)
    first = await paths.post({"query": BESIDE}, token)
    assert await gw.upstream_calls(CHECKSESSION) == before + 1  # the plan's; none again
    assert calls == ["sessions"]
    answer = first.json()
    assert answer["data"]["checkSession"] == {"valid": True, "wechatSessionValid": True}
    assert answer["errors"][0]["message"] == "Internal server error."
    assert answer["errors"][0]["path"] == ["viewer", "sessions"]
    await paths.same(BESIDE, token=token, by_hash=False)  # as the reference answers it
