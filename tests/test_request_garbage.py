"""A request's objects go when its answer is built, by reference counting alone.

Anything a request reaches that sits in a reference cycle (graphql-core's executor, an httpx
response and its stream) waits for the cyclic collector instead, mostly for a full collection:
hundreds of requests' contexts, variables and WeChat answers held at once, a process's memory
high-water mark raised for nothing. Error paths (exceptions keep their frames) are left out.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from gateway.api.context import Context
from gateway.compat.strawberry import LeanExecutionContext
from tests.support.harness import Harness

REFRESH = """mutation($t: String!) {
  refreshToken(refreshToken: $t) { __typename ... on RefreshSuccess { accessToken } }
}"""
VIEWER = "{ viewer { id identities { kind } } }"


def _held_by_cycles(garbage: list[Any]) -> list[str]:
    """The request-scoped objects among what only the cyclic collector could free."""
    held = []
    for obj in garbage:
        if isinstance(obj, LeanExecutionContext | Context):
            held.append(type(obj).__name__)
        elif isinstance(obj, httpx.Response) and obj.request.url.path.startswith("/sns/"):
            held.append(f"WeChat answer {obj.request.url.path}")  # the gateway's own call
    return held


async def _garbage_of(run: Callable[[], Awaitable[None]]) -> list[str]:
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable is kept to look at
    try:
        await run()
        gc.collect()
        return _held_by_cycles(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_logins_token_checks_and_refreshes_leave_no_cycles(gw: Harness) -> None:
    await gw.login("shop-mp", "warm-up")  # one-off work (a query's first validation) first
    tokens: dict[str, str] = {}

    async def requests() -> None:
        login = await gw.login("shop-mp", "alice")  # new account: a WeChat call and writes
        again = await gw.login("shop-mp", "alice")  # returning
        tokens["viewer"] = (await gw.gql(VIEWER, token=again["accessToken"]))["data"]["viewer"]
        body = await gw.gql(REFRESH, {"t": login["refreshToken"]})
        tokens["refresh"] = body["data"]["refreshToken"]["__typename"]

    assert await _garbage_of(requests) == []
    assert tokens["viewer"] is not None
    assert tokens["refresh"] == "RefreshSuccess"
