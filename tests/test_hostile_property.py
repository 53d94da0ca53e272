"""The HTTP surface under arbitrary input (issue 12): hypothesis sends JSON bodies of any shape and
GraphQL documents carrying NULs, lone surrogates, huge numbers and deep nesting. Whatever comes in:
no 5xx, no masked crash ("Internal server error."), a JSON body, and the gateway stays healthy.
The example budget is fixed so the suite stays fast."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway import i18n
from gateway.api.schema import MASKED
from tests.support.harness import Harness
from tests.support.hostile import budget, hostile_text

BUDGET = budget(200)
TEXT = hostile_text(["\u202e", "😀", "\\", '"'], max_size=40)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


def deep(depth: int, leaf: Any) -> Any:
    value = leaf
    for n in range(depth):
        value = [value] if n % 2 else {"a": value}
    return value


CLIENT = st.fixed_dictionaries({"platform": TEXT}, optional={"channel": TEXT, "deviceParam": TEXT})
OPERATIONS = [
    ("mutation($a: String!, $c: String!, $k: ClientInput!) { loginByCode(input: "
     "{app: $a, code: $c, client: $k}) { __typename } }",
     st.fixed_dictionaries({"a": TEXT, "c": TEXT, "k": CLIENT})),
    ("mutation($u: String!, $p: String!, $k: ClientInput!) { loginWithPassword(input: "
     '{username: $u, password: $p, app: "shop-mp", client: $k}) { __typename } }',
     st.fixed_dictionaries({"u": TEXT, "p": TEXT, "k": CLIENT})),
    ("mutation($u: String!, $p: String!, $k: ClientInput!) { registerWithPassword(input: "
     '{username: $u, password: $p, app: "shop-mp", client: $k}) { __typename } }',
     st.fixed_dictionaries({"u": TEXT, "p": TEXT, "k": CLIENT})),
    ("mutation($t: String!) { refreshToken(refreshToken: $t) { __typename } }",
     st.fixed_dictionaries({"t": TEXT})),
    ("query($a: String!, $r: String!) { authorizationUrl(app: $a, redirectUri: $r) "
     "{ __typename } }", st.fixed_dictionaries({"a": TEXT, "r": TEXT})),
    ("query($i: ID!) { node(id: $i) { id } }", st.fixed_dictionaries({"i": TEXT})),
]  # fmt: skip


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A known operation with hostile variables, wrong-typed ones, or literals in the text."""
    query, variables = draw(st.sampled_from(OPERATIONS))
    kind = draw(st.sampled_from(["hostile", "any-json", "literal", "deep"]))
    if kind == "hostile":
        return {"query": query, "variables": draw(variables)}
    if kind == "any-json":
        return {"query": query, "variables": draw(st.dictionaries(TEXT, JSON_VALUES))}
    if kind == "deep":
        depth = draw(st.integers(min_value=1, max_value=90))
        return {"query": query, "variables": {"a": deep(depth, draw(SCALARS))}}
    literal = json.dumps(draw(TEXT))  # JSON string escapes are GraphQL string escapes
    number = draw(st.integers(min_value=-(10**30), max_value=10**30))
    return {"query": f"{{ authorizationUrl(app: {literal}, redirectUri: {literal}) "
            f"{{ __typename }} node(id: {number}) {{ id }} }}"}  # fmt: skip


async def assert_sane(gw: Harness, body: bytes) -> None:
    response = await gw.client.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code < 500, response.text
    shown = json.dumps(response.json(), ensure_ascii=False)
    for locale in i18n.LOCALES:
        assert i18n.gettext(locale, "errors", MASKED) not in shown, shown
    json.loads(response.content)


async def drive(gw: Harness, test: Callable[[Callable[[bytes], None]], None]) -> None:
    """Hypothesis runs sync functions: it runs in a thread, each example on the test's loop."""
    loop = asyncio.get_running_loop()

    def send(body: bytes) -> None:
        coroutine: Coroutine[Any, Any, None] = assert_sane(gw, body)
        asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

    await asyncio.to_thread(test, send)
    await assert_healthy(gw)


async def assert_healthy(gw: Harness) -> None:
    assert (await gw.client.get("/healthz")).status_code == 200
    answer = await gw.client.post("/graphql", json={"query": "{ apps { key } }"})
    assert answer.json()["data"]["apps"]


BODIES = st.one_of(
    JSON_VALUES,
    st.dictionaries(
        st.sampled_from(["query", "variables", "operationName", "extensions"]), JSON_VALUES
    ),
)


async def test_arbitrary_json_bodies(gw: Harness) -> None:
    def test(send: Callable[[bytes], None]) -> None:
        @BUDGET
        @given(body=BODIES)
        def check(body: Any) -> None:
            send(json.dumps(body).encode())

        check()

    await drive(gw, test)


async def test_arbitrary_bytes(gw: Harness) -> None:
    def test(send: Callable[[bytes], None]) -> None:
        @BUDGET
        @given(body=st.binary(max_size=200))
        def check(body: bytes) -> None:
            send(body)

        check()

    await drive(gw, test)


async def test_hostile_graphql_documents(gw: Harness) -> None:
    def test(send: Callable[[bytes], None]) -> None:
        @BUDGET
        @given(request=documents())
        def check(request: dict[str, Any]) -> None:
            send(json.dumps(request).encode())

        check()

    await drive(gw, test)
