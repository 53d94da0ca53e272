"""A mutation plan gives its resolver the resolve info strawberry gives it.

``gateway.compat.strawberry.fields.resolve_info`` builds strawberry's private resolve info
(``_OperationContextAwareGraphQLResolveInfo``, 0.341.x) by position; a mutation plan
(gateway.api.mutation_plan) passes it the coerced variables too. Here a mutation with
variables, a literal input object and a union result records its raw info, once run by
strawberry and once by a plan; every field of the info must be equal (the path compared as a
list, graphql-core's async helpers and abort signal being per run), and so must the answers.
An upgrade that reorders or renames the info's fields fails here, loudly.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated, Any

import pytest
import strawberry
from graphql import parse, print_ast

from gateway.api.mutation_plan import make_mutation_plan, run_mutation
from gateway.compat.strawberry import graphql_schema

SEEN: list[Any] = []
PER_RUN = {"path", "is_awaitable", "abort_signal", "async_helpers"}


@strawberry.type
class Done:
    label: str


@strawberry.type
class Refused:
    code: str


@strawberry.input
class Where:
    platform: str
    channel: str | None = None


Outcome = Annotated[Done | Refused, strawberry.union("Outcome")]


@strawberry.type
class Query:
    ping: str = "pong"


@strawberry.type
class Mutation:
    @strawberry.mutation
    def act(self, info: strawberry.Info, name: str, where: Where) -> Outcome:
        SEEN.append(info._raw_info)
        if name == "no":
            return Refused(code="NO")
        return Done(label=f"{name}@{where.platform}/{where.channel}")


SCHEMA = strawberry.Schema(query=Query, mutation=Mutation)
DOCUMENT = (
    'mutation($name: String!) { act(name: $name, where: {platform: "ios"}) '
    "{ __typename ... on Done { label } ... on Refused { code } } }"
)


def _fields(info: Any) -> dict[str, Any]:
    fields = {name: getattr(info, name) for name in info._fields if name not in PER_RUN}
    return {**fields, "path": info.path.as_list(), "type": type(info)}


@pytest.mark.parametrize("name", ["yes", "no"])
async def test_the_plan_gives_the_resolver_strawberry_s_info(name: str) -> None:
    SEEN.clear()
    document = parse(DOCUMENT)
    schema = graphql_schema(SCHEMA)
    plan = make_mutation_plan(schema, document, lambda _: None)
    assert plan is not None
    context = {"who": "test"}
    reference = await SCHEMA.execute(DOCUMENT, {"name": name}, context_value=context)

    def replay(_: Any) -> Any:
        raise AssertionError("a plan that succeeds replays nothing")

    data = await run_mutation(plan, schema, {"name": name}, context, None, replay)
    assert data == reference.data
    expected, got = (_fields(info) for info in SEEN)
    for fields in (expected, got):  # parsed twice: compared as printed
        fields["operation"] = print_ast(fields["operation"])
        fields["field_nodes"] = [print_ast(node) for node in fields["field_nodes"]]
    different = {k for k in expected if expected[k] != got[k]}
    if different:
        pytest.fail(
            "gateway.compat.strawberry.fields.resolve_info assumes the resolve info's fields "
            f"and their order; {sorted(different)} differ with strawberry-graphql "
            f"{version('strawberry-graphql')}",
            pytrace=False,
        )
