"""A plan's fields called without strawberry's per-field wrapper get what the wrapper gives.

``gateway.compat.strawberry.fields.plain_resolver`` calls a field's own resolver the way
strawberry's wrapper would (``GraphQLCoreConverter.from_resolver``, 0.341.x): same ``self``,
``root``, parent and ``Info``. Here each kind of resolver records what it was called with,
once run by strawberry and once by a plan (gateway.api.plan) with the direct calls; the records
and the answers must be equal, and every field the wrapper has more to do for (arguments,
permission classes, field extensions, exception handlers, no resolver) must be left to it.
An upgrade of strawberry that changes how resolvers are called fails here, loudly.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import pytest
import strawberry
from graphql import parse
from strawberry import relay
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission

from gateway.api.plan import make_plan, run
from gateway.compat import strawberry as compat_sb
from gateway.compat.strawberry import fields as compat_fields

CALLS: list[tuple[str, Any, Any]] = []


def assume(holds: object, module: str, assumption: str) -> None:
    """Fail naming the compat module's assumption and the installed strawberry."""
    if not holds:
        pytest.fail(
            f"gateway.compat.strawberry.fields assumes {assumption}; that no longer holds "
            f"with strawberry-graphql {version('strawberry-graphql')} ({module})",
            pytrace=False,
        )


def _record(name: str, received: Any, info: Any) -> None:
    """What a resolver got: its source, and what a resolver reads of its ``Info``."""
    seen = None
    if info is not None:
        seen = (type(info), info.field_name, info.python_name, info.context, info.path)
    CALLS.append((name, received, seen))


class Allow(BasePermission):
    message = "no"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return True


class Same(FieldExtension):
    def resolve(self, next_: Any, source: Any, info: strawberry.Info, **kwargs: Any) -> Any:
        return next_(source, info, **kwargs)


@strawberry.type
class Item(relay.Node):
    id: relay.NodeID[str]
    name: str

    @strawberry.field
    def by_self(self, info: strawberry.Info) -> str:
        _record("by_self", self, info)
        return self.name

    @strawberry.field
    def by_root(root: Item) -> str:
        _record("by_root", root, None)
        return root.name.upper()

    @strawberry.field
    def by_parent(self, parent: strawberry.Parent[Item]) -> int:
        _record("by_parent", (self, parent), None)
        return len(parent.name)


@strawberry.type
class Query:
    @strawberry.field
    async def item(self, info: strawberry.Info) -> Item:
        _record("item", self, info)
        return Item(id="i-1", name="pear")

    @strawberry.field
    def plain(self) -> str:
        _record("plain", self, None)
        return "x"

    @strawberry.field
    def info_only(info: strawberry.Info) -> str:
        _record("info_only", None, info)
        return info.field_name

    @strawberry.field
    def argued(self, n: int = 1) -> int:
        return n

    @strawberry.field(permission_classes=[Allow])  # type: ignore[untyped-decorator]
    def allowed(self) -> bool:
        return True

    @strawberry.field(extensions=[Same()])  # type: ignore[untyped-decorator]
    def extended(self) -> bool:
        return True

    basic: str = "basic"


DOCUMENT = "{ item { id name bySelf byRoot byParent } plain infoOnly }"
WRAPPED = {"argued", "allowed", "extended", "basic"}


async def test_plain_resolvers_get_what_strawberrys_wrapper_gives() -> None:
    schema = strawberry.Schema(query=Query)
    graphql = compat_sb.graphql_schema(schema)
    fields = graphql.query_type.fields if graphql.query_type else {}
    for name, field in fields.items():
        direct = compat_fields.plain_resolver(schema, field)
        assume(
            (direct is None) is (name in WRAPPED),
            "strawberry",
            "a field with arguments, permission classes, field extensions or no resolver of "
            f"its own is called through strawberry's wrapper, any other directly ({name})",
        )
    context = {"request": "r"}
    CALLS.clear()
    reference = await schema.execute(DOCUMENT, context_value=context)
    assert reference.errors is None
    by_strawberry = list(CALLS)
    plan = make_plan(graphql, parse(DOCUMENT), lambda f: compat_fields.plain_resolver(schema, f))
    assert plan is not None
    wrapped = [s.key for s in plan.steps if s.resolve is fields[s.field[0]].resolve]
    assert wrapped == []  # every field of the document is called directly
    CALLS.clear()
    data = await run(plan, graphql, context, None)
    assert data == reference.data
    assume(
        by_strawberry == CALLS,
        "strawberry",
        "its wrapper passes self, root, parent and an Info of config.info_class as "
        f"get_arguments does (strawberry: {by_strawberry}; direct: {CALLS})",
    )


class Oops(Exception):
    pass


@strawberry.type
class Failed:
    reason: str


@strawberry.type
class Ok:
    value: str


class Handler(strawberry.ExceptionHandler[Oops, Failed]):
    def handle(self, exception: Oops, *, field: Any, info: Any) -> Failed:
        return Failed(reason="oops")


@strawberry.type
class HandledQuery:
    @strawberry.field
    def result(self) -> Ok | Failed:
        raise Oops

    @strawberry.field
    def other(self) -> str:
        return "x"


async def test_a_field_an_exception_handler_may_answer_is_left_to_the_wrapper() -> None:
    schema = strawberry.Schema(query=HandledQuery, exception_handlers=[Handler()])
    answer = await schema.execute("{ result { ... on Failed { reason } } }")
    assert answer.data == {"result": {"reason": "oops"}}  # the handler is strawberry's wrapper
    fields = compat_sb.graphql_schema(schema).query_type.fields  # type: ignore[union-attr]
    assume(
        compat_fields.plain_resolver(schema, fields["result"]) is None
        and compat_fields.plain_resolver(schema, fields["other"]) is not None,
        "strawberry",
        "GraphQLCoreConverter._get_field_exception_handlers names the handlers a field's "
        "wrapper applies",
    )
