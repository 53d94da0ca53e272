"""GraphQL's route taken without the router (gateway.app.FirstRoute) answers as the router does.

Two gateways on the same database, one with ``[performance] fast_paths`` (the shortcut) and
one without (Starlette's router and exception middleware): every request below, matched by
the route or not (wrong method, another path, a trailing slash, a refused body), must get the
same status, headers and body from both.
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from typing import Any

import httpx

from gateway.app import FirstRoute
from tests.support.harness import Configure, Harness, running

NOT_COMPARED = {"x-request-id", "date"}


# the playground page's nonce, fresh per answer
NONCE = re.compile(rb"nonce(-|=\"|\" content=\")[A-Za-z0-9_-]+")


def _answer(response: httpx.Response) -> tuple[int, list[tuple[str, bytes]], bytes]:
    headers = sorted(
        (k, NONCE.sub(b"nonce", v.encode()))
        for k, v in response.headers.items()
        if k not in NOT_COMPARED
    )
    return response.status_code, headers, NONCE.sub(b"nonce", response.content)


def _has_first_route(gw: Harness) -> bool:
    layer: Any = gw.app.middleware_stack
    while layer is not None:
        if isinstance(layer, FirstRoute):
            return layer.active
        layer = getattr(layer, "app", None)
    return False


async def test_graphqls_route_answers_as_the_router_does(
    database_url: str, configure: Configure
) -> None:
    async with AsyncExitStack() as stack:
        fast = await stack.enter_async_context(running(configure(database_url)))
        reference = await stack.enter_async_context(
            running(configure(database_url, performance={"fast_paths": False}))
        )
        token = (await fast.login("shop-mp", "ivy"))["accessToken"]
        auth = {"authorization": f"Bearer {token}"}
        requests: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", "/graphql", {"json": {"query": "{ sandbox }"}}),
            ("POST", "/graphql", {"json": {"query": "{ viewer { id } }"}, "headers": auth}),
            ("POST", "/graphql", {"json": {"query": "{ nope }"}}),
            ("POST", "/graphql", {"content": b"{", "headers": {"content-type": "text/plain"}}),
            ("POST", "/graphql", {"content": b"x" * 3_000_000}),
            ("GET", "/graphql", {"params": {"query": "{ sandbox }"}}),
            ("GET", "/graphql", {"headers": {"accept": "text/html"}}),
            ("PUT", "/graphql", {"json": {"query": "{ sandbox }"}}),
            ("DELETE", "/graphql", {}),
            ("POST", "/graphql/", {"json": {"query": "{ sandbox }"}}),
            ("POST", "/graphqlx", {"json": {"query": "{ sandbox }"}}),
            ("GET", "/healthz", {}),
        ]
        for method, path, options in requests:
            answers = [await gw.client.request(method, path, **options) for gw in (fast, reference)]
            assert _answer(answers[0]) == _answer(answers[1]), (method, path)
        assert answers[0].status_code == 200  # (the last: healthz)
        assert _has_first_route(fast)
        assert not _has_first_route(reference)
