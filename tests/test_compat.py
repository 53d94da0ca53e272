"""The framework internals the gateway relies on still hold, and live in ``gateway.compat`` only.

Each check names the compat module and the assumption it makes, so an upgrade of strawberry,
graphql-core or SQLAlchemy that breaks one fails here, saying what to look at, rather than as
a slower gateway or a changed answer somewhere else.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import sqlite3
import ssl
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
import sqlalchemy as sa
import strawberry
from graphql import GraphQLError, GraphQLSchema, parse, specified_rules
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite.pysqlite import dialect as sqlite_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import Pool
from sqlalchemy.sql.compiler import SQLCompiler
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from strawberry.asgi import GraphQL
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.http import GraphQLRequestData
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType

from gateway.compat import httpx as compat_httpx
from gateway.compat import sqlalchemy as compat_sa
from gateway.compat import strawberry as compat_sb

DISTRIBUTIONS = {
    "strawberry": "strawberry-graphql",
    "graphql": "graphql-core",
    "sqlalchemy": "SQLAlchemy",
    "httpx": "httpx",
}


def assume(holds: object, module: str, assumption: str) -> None:
    """Fail naming the compat module, its assumption and the installed library's version."""
    if not holds:
        dist = DISTRIBUTIONS[module]
        pytest.fail(
            f"gateway.compat.{module} assumes {assumption}; "
            f"that no longer holds with {dist} {version(dist)}",
            pytrace=False,
        )


def params(function: Callable[..., Any]) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


@strawberry.type
class _Query:
    @strawberry.field
    def hello(self, some_name: str = "world") -> str:
        return some_name


@strawberry.type
class _Mutation:
    @strawberry.mutation
    def poke(self) -> int:
        return 1


# --- gateway.compat.strawberry ------------------------------------------------------------


class _Recorder(SchemaExtension):
    def __init__(self) -> None:
        self.seen: list[str] = []
        _RECORDERS.append(self)

    def on_operation(self) -> Iterator[None]:
        self.seen.append("operation")
        yield
        self.seen.append("/operation")

    def on_parse(self) -> Iterator[None]:
        self.seen.append("parse")
        yield

    def on_validate(self) -> Iterator[None]:
        self.seen.append("validate")
        yield

    def on_execute(self) -> Iterator[None]:
        self.seen.append("execute")
        yield


_RECORDERS: list[_Recorder] = []


async def test_the_lean_runner_is_the_one_strawberry_runs_every_stage_through() -> None:
    assume(
        params(SchemaExtensionsRunner.__init__) == ["execution_context", "extensions"],
        "strawberry",
        "SchemaExtensionsRunner(execution_context, extensions) (strawberry 0.341.x)",
    )
    called: list[str] = []

    class Spy(compat_sb.LeanExtensionsRunner):
        def _stage(self, hook: str) -> Any:
            called.append(hook)
            return super()._stage(hook)

    class Schema(compat_sb.LeanSchema):
        def create_extensions_runner(self, execution_context: Any, extensions: list[Any]) -> Any:
            called.append("runner")
            return Spy(execution_context=execution_context, extensions=extensions)

    _RECORDERS.clear()
    schema = Schema(query=_Query, extensions=[_Recorder])
    result = await schema.execute("{ hello }")
    assert result.errors is None
    assert result.data == {"hello": "world"}
    assume(
        called == ["runner", "on_operation", "on_parse", "on_validate", "on_execute"],
        "strawberry",
        "Schema.execute builds its runner with create_extensions_runner(execution_context, "
        "extensions), once per request, and enters each stage through the runner's "
        f"{sorted(compat_sb.RUNNER_STAGES)} methods (called: {called})",
    )
    assume(
        _RECORDERS[-1].seen == ["operation", "parse", "validate", "execute", "/operation"],
        "strawberry",
        "each runner stage runs the SchemaExtension generator hook of the same name around "
        f"its work (ran: {_RECORDERS[-1].seen})",
    )


async def test_the_execution_context_drops_graphql_cores_cycle() -> None:
    assume(
        strawberry.Schema(query=_Query).execution_context_class
        is StrawberryGraphQLCoreExecutionContext,
        "strawberry",
        "StrawberryGraphQLCoreExecutionContext is strawberry's default execution context",
    )
    seen: dict[str, bool] = {}

    class Spy(compat_sb.LeanExecutionContext):
        def build_response(self, data: dict[str, Any] | None) -> Any:
            helpers = self.__dict__.get("async_helpers") or ()
            seen["cycle"] = any(getattr(h, "__self__", None) is self for h in helpers)
            response = super().build_response(data)
            seen["released"] = "async_helpers" not in self.__dict__
            return response

    result = await strawberry.Schema(query=_Query, execution_context_class=Spy).execute("{ hello }")
    assert result.data == {"hello": "world"}
    assume(
        seen.get("cycle"),
        "graphql",
        "the executor holds its own bound methods in the instance attribute async_helpers "
        "when build_response runs (graphql-core 3.3.x)",
    )
    assume(
        seen.get("released"),
        "graphql",
        "release_async_helpers removes async_helpers from the executor",
    )


def test_the_graphql_core_schema_is_at_schema_underscore_schema() -> None:
    schema = strawberry.Schema(query=_Query)
    found = getattr(schema, "_schema", None)
    assume(
        isinstance(found, GraphQLSchema) and found.query_type is not None,
        "strawberry",
        "strawberry.Schema keeps the graphql-core schema in Schema._schema",
    )
    assert compat_sb.graphql_schema(schema) is found


async def test_the_provided_operation_name_is_kept_apart_from_the_default() -> None:
    names: list[tuple[str | None, str | None]] = []

    class Names(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            context = self.execution_context
            names.append((compat_sb.provided_operation_name(context), context.operation_name))
            yield

    schema = strawberry.Schema(query=_Query, extensions=[Names])
    await schema.execute("query A { hello }")
    await schema.execute("query A { hello } query B { hello }", operation_name="B")
    assume(
        names == [(None, "A"), ("B", "B")],
        "strawberry",
        "ExecutionContext._provided_operation_name is the operationName the request named "
        f"(None when it named none) while operation_name falls back to the first (got {names})",
    )


def test_strawberrys_validation_entry() -> None:
    assume(
        params(compat_sb.validate) == ["schema", "document", "validation_rules"],
        "strawberry",
        "strawberry.schema.schema.validate_document(schema, document, validation_rules)",
    )
    schema = compat_sb.graphql_schema(strawberry.Schema(query=_Query))
    rules = tuple(specified_rules)
    assert compat_sb.validate(schema, parse("{ hello }"), rules) == []
    errors = compat_sb.validate(schema, parse("{ nope }"), rules)
    assume(
        len(errors) == 1 and isinstance(errors[0], GraphQLError),
        "strawberry",
        "validate_document answers the document's validation errors as a list",
    )


def test_camel_case_is_the_schemas_naming() -> None:
    schema = compat_sb.graphql_schema(strawberry.Schema(query=_Query))
    arguments = schema.query_type.fields["hello"].args if schema.query_type else {}
    assume(
        compat_sb.camel_case("some_name") in arguments,
        "strawberry",
        "strawberry.utils.str_converters.to_camel_case names arguments as the schema does",
    )


async def test_executing_over_post() -> None:
    assume(
        set(compat_sb.OVER_POST) >= {OperationType.QUERY, OperationType.MUTATION},
        "strawberry",
        "OperationType.from_http('POST') allows queries and mutations",
    )
    assume(
        {"allowed_operation_types", "operation_extensions"}
        <= set(params(strawberry.Schema.execute)),
        "strawberry",
        "Schema.execute takes allowed_operation_types and operation_extensions",
    )
    schema = strawberry.Schema(query=_Query, mutation=_Mutation)
    done = await compat_sb.execute_over_post(
        schema, GraphQLRequestData("mutation { poke }", None, None, None, "http"), None
    )
    assert done.data == {"poke": 1}
    unknown = GraphQLRequestData("query A { hello }", None, "B", None, "http")
    reason: object = None
    try:
        await compat_sb.execute_over_post(schema, unknown, None)
    except compat_sb.CannotGetOperationTypeError as exc:
        reason = exc.as_http_error_reason()
    assume(
        isinstance(reason, str),
        "strawberry",
        "an operationName the document does not have raises CannotGetOperationTypeError, "
        "with as_http_error_reason()",
    )


async def test_executing_a_prepared_document_is_what_strawberry_executes() -> None:
    """gateway.api.prepared runs a document parsed and validated before through
    ``execute_document``: the same answer, execution context class, resolve info and
    operation extensions as ``Schema.execute``, and errors processed as strawberry does."""

    from strawberry.schema.schema import Schema as StrawberrySchema

    source = inspect.getsource(StrawberrySchema._execute_operation)
    assume(
        all(
            name in source
            for name in ("execute_function(", "self._schema", "middleware=middleware_manager",
                         "is_awaitable=optimized_is_awaitable", "execution_context_class_kwargs",
                         "**custom_context_kwargs", "root_value=execution_context.root_value")
        ),
        "strawberry",
        "Schema._execute_operation calls the execute function on Schema._schema with the "
        "middleware, optimized_is_awaitable, the execution context class and the operation "
        "extensions, as execute_document does",
    )  # fmt: skip
    seen: list[Any] = []

    class Recording(StrawberryGraphQLCoreExecutionContext):
        def build_response(self, data: Any) -> Any:
            seen.append(self.operation_extensions)
            return super().build_response(data)

    @strawberry.type
    class Query:
        @strawberry.field
        def shout(self, info: strawberry.Info, word: str) -> str:
            if word == "boom":
                raise ValueError("boom")
            return f"{word}!" + str(sorted(info.context))

    schema = strawberry.Schema(query=Query, execution_context_class=Recording)
    text = "query Shout($w: String!) { shout(word: $w) }"
    for word in ("hi", "boom"):
        reference = await schema.execute(
            text, variable_values={"w": word}, context_value={"c": 1},
            operation_extensions={"x": 1},
        )  # fmt: skip
        prepared = compat_sb.execute_document(
            schema, parse(text), "Shout", {"w": word}, {"c": 1}, {"x": 1}
        )
        prepared = await prepared if inspect.isawaitable(prepared) else prepared
        assume(
            (prepared.data, [e.formatted for e in prepared.errors or ()])
            == (reference.data, [e.formatted for e in reference.errors or ()])
            and seen[-2:] == [{"x": 1}, {"x": 1}],
            "strawberry",
            "execute_document answers as Schema.execute does, through the schema's "
            "execution context class, with the operation extensions",
        )
    hinted = strawberry.Schema(query=Query, config=StrawberryConfig(disable_field_suggestions=True))
    error = GraphQLError("Cannot query field 'shot'. Did you mean 'shout'?")
    context = ExecutionContext(query="{ shot }", schema=hinted, allowed_operations=())
    compat_sb.process_errors(hinted, [error], context)
    assume(
        "Did you mean" not in error.message,
        "strawberry",
        "BaseSchema._process_errors drops field suggestions when the schema disables them",
    )


def test_the_gateways_extensions_need_no_middleware() -> None:
    """execute_document passes no middleware: strawberry would pass the extensions that
    implement ``resolve``, and the gateway's implement none."""
    from gateway.api.schema import build_schema

    for extension in build_schema().get_extensions():
        assume(
            not extension._implements_resolve(),
            "strawberry",
            "SchemaExtension._implements_resolve() is false for an extension without resolve",
        )


async def test_an_extension_steers_parsing_and_validation() -> None:
    """gateway.api.schema's extension parses and validates itself (cached), as strawberry's
    ParserCache and ValidationCache do: strawberry must then do neither."""

    class Steer(SchemaExtension):
        def on_parse(self) -> Iterator[None]:
            self.execution_context.graphql_document = parse('{ hello(someName: "set") }')
            yield

        def on_validate(self) -> Iterator[None]:
            self.execution_context.pre_execution_errors = []
            yield

    schema = strawberry.Schema(query=_Query, extensions=[Steer])
    result = await schema.execute("{ nope }")  # strawberry would refuse it, if it looked
    assume(
        result.errors is None and result.data == {"hello": "set"},
        "strawberry",
        "an extension that sets ExecutionContext.graphql_document in on_parse and "
        "pre_execution_errors in on_validate replaces strawberry's own parse and validation "
        f"(got {result})",
    )


class _View(compat_sb.GraphQLView):
    def __init__(self) -> None:
        super().__init__(strawberry.Schema(query=_Query, mutation=_Mutation))
        self.calls: list[Any] = []

    async def before_operation(self, context: Any) -> None:
        self.calls.append("before")

    def after_operation(self, context: Any) -> None:
        self.calls.append("after")

    def refuse(self, request: Request) -> Response | None:
        return PlainTextResponse("refused", 406) if request.headers.get("x-refuse") else None

    def request_error(self, request: Request, reason: str, status: int) -> Response:
        self.calls.append(("error", status))
        return PlainTextResponse(reason, status)

    def decode_body(self, data: str | bytes) -> Any:
        self.calls.append("body")
        return super().decode_body(data)

    def decode_query(self, params: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("query")
        return super().decode_query(params)


async def _ask(view: _View, method: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=view)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, "/graphql", **kwargs)


async def test_the_views_override_points() -> None:
    for name, expected in {
        "run": ["request", "context", "root_value"],
        "execute_operation": [
            "request",
            "request_adapter",
            "request_data",
            "context",
            "root_value",
            "sub_response",
        ],
        "parse_json": ["data"],
        "parse_query_params": ["params"],
        # the ASGI integration's own methods, which gateway.api.http overrides as well
        "get_context": ["request", "response"],
        "get_sub_response": ["request"],
        "create_response": ["response_data", "sub_response"],
        "process_result": ["request", "result"],
        "render_graphql_ide": ["request"],
    }.items():
        assume(
            params(getattr(GraphQL, name)) == expected,
            "strawberry",
            f"the ASGI view's undocumented {name}({', '.join(expected)})",
        )
    view = _View()
    answer = await _ask(view, "POST", json={"query": "{ hello }"})
    assert answer.json() == {"data": {"hello": "world"}}
    assume(
        view.calls == ["body", "before", "after"],
        "strawberry",
        "a POST's body goes through parse_json, and execute_operation(context=...) runs the "
        f"operations (hooks called: {view.calls})",
    )
    view = _View()
    answer = await _ask(view, "GET", params={"query": "{ hello }", "variables": "{}"})
    assume(
        answer.status_code == 200 and view.calls[0] == "query" and "before" in view.calls,
        "strawberry",
        f"a GET's parameters go through parse_query_params (hooks called: {view.calls})",
    )
    view = _View()
    answer = await _ask(
        view, "POST", content=b"{not json", headers={"content-type": "application/json"}
    )
    assume(
        answer.status_code == 400 and view.calls == ["body", ("error", 400)],
        "strawberry",
        "a body that is not JSON is an HTTPException(400) out of run "
        f"(got {answer.status_code}, hooks called: {view.calls})",
    )
    view = _View()
    answer = await _ask(view, "POST", json={"query": "{ hello }"}, headers={"x-refuse": "1"})
    assert answer.status_code == 406
    assert view.calls == []
    with pytest.raises(compat_sb.OperationNotAllowed):
        await _ask(_View(), "GET", params={"query": "mutation { poke }"})


# --- gateway.compat.sqlalchemy ------------------------------------------------------------

_T = sa.table("t", sa.column("a", sa.Integer), sa.column("b", sa.String))


def test_compiled_statements_name_their_parameters_in_order() -> None:
    for attribute in ("positiontup", "binds", "escaped_bind_names", "insert_prefetch",
                      "update_prefetch", "string"):  # fmt: skip
        compiled = sa.select(_T.c.a).compile(dialect=sqlite_dialect())
        assume(
            isinstance(compiled, SQLCompiler) and hasattr(compiled, attribute),
            "sqlalchemy",
            f"a compiled statement is a SQLCompiler with {attribute}",
        )
    statement = sa.select(_T.c.a).where(_T.c.b == sa.bindparam("b"), _T.c.a > 3)
    dialects: list[tuple[Dialect, str]] = [
        (asyncpg_dialect(), "$1"),  # type: ignore[no-untyped-call]
        (sqlite_dialect(), "?"),
    ]
    for dialect, marker in dialects:
        found = compat_sa.positional(statement, dialect, frozenset())
        assume(
            marker in found.sql
            and len(found.names) == 2
            and found.names[0] == "b"
            and found.binds[0].key == "b"
            and found.binds[1].effective_value == 3,
            "sqlalchemy",
            f"SQLCompiler.positiontup lists the parameters in order and binds maps them to "
            f"their BindParameter ({dialect.name}: {found})",
        )


def test_statements_without_one_plan_are_refused() -> None:
    table = sa.Table(
        "d",
        sa.MetaData(),
        sa.Column("id", sa.Integer, default=lambda: 1),
        sa.Column("b", sa.String),
    )
    expanding = sa.select(_T.c.a).where(_T.c.a.in_(sa.bindparam("xs", expanding=True)))
    for statement, keys, what in (
        (sa.insert(table), frozenset({"b"}), "insert_prefetch lists a Python-side default"),
        (expanding, frozenset(), "an expanding parameter renders as POSTCOMPILE"),
    ):
        try:
            compat_sa.positional(statement, sqlite_dialect(), keys)
        except ValueError:
            continue
        assume(False, "sqlalchemy", f"{what}, and positional() refuses it")


def test_driver_errors_become_sqlalchemys() -> None:
    assume(
        params(sa.exc.DBAPIError.instance)[:5]
        == ["statement", "params", "orig", "dbapi_base_err", "hide_parameters"],
        "sqlalchemy",
        "DBAPIError.instance(statement, params, orig, dbapi_base_err, hide_parameters, ...)",
    )
    error = compat_sa.dbapi_error("INSERT ...", sqlite3.IntegrityError("UNIQUE"), sqlite3.Error)
    assume(
        isinstance(error, IntegrityError) and error.hide_parameters,
        "sqlalchemy",
        "DBAPIError.instance wraps a driver's IntegrityError as sqlalchemy.exc.IntegrityError",
    )


async def test_a_lost_connection_invalidates_the_whole_pool(tmp_path: Path) -> None:
    assume(
        params(Pool._invalidate)[:2] == ["connection", "exception"],
        "sqlalchemy",
        "Pool._invalidate(connection, exception) exists (SQLAlchemy 2.0/2.1)",
    )
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}", pool_size=2)
    try:
        broken = await engine.raw_connection()
        other = await engine.raw_connection()
        old = other.driver_connection
        await asyncio.sleep(0.01)  # the invalidation is later than every connection
        compat_sa.invalidate_pool(engine, broken, ConnectionError("gone"))
        other.close()
        broken.close()
        again = await engine.raw_connection()
        replaced = again.driver_connection is not old
        again.close()
    finally:
        await engine.dispose()
        await asyncio.sleep(0.1)  # aiosqlite's thread of the invalidated connection winds down
    assume(
        not broken.is_valid and replaced,
        "sqlalchemy",
        "Pool._invalidate invalidates the connection and every connection as old as it, "
        "which the pool replaces at its next checkout",
    )


async def test_the_transport_runs_on_the_pool_it_is_given() -> None:
    """compat.httpx.transport_on: ``AsyncHTTPTransport`` sends every request through its
    ``_pool`` (httpcore's pool interface), so a pool of our own carries them, and closing the
    client closes it."""
    default = httpx.AsyncHTTPTransport()
    assume(
        isinstance(getattr(default, "_pool", None), httpcore.AsyncConnectionPool),
        "httpx",
        "AsyncHTTPTransport keeps its httpcore connection pool at _pool",
    )
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    made: list[httpcore.AsyncConnectionPool] = []

    def pool(ssl_context: ssl.SSLContext) -> httpcore.AsyncConnectionPool:
        made.append(
            httpcore.AsyncConnectionPool(
                ssl_context, network_backend=httpcore.AsyncMockBackend([answer])
            )
        )
        return made[0]

    transport = compat_httpx.transport_on(pool)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get("http://wechat.test/sns/jscode2session")
        assume(
            response.status_code == 200 and response.text == "hi" and len(made[0].connections),
            "httpx",
            "AsyncHTTPTransport.handle_async_request sends through _pool (here a mock backend's)",
        )
    assume(
        not made[0].connections,
        "httpx",
        "AsyncHTTPTransport.aclose (the client's) closes its _pool",
    )


def test_the_transport_loads_the_ca_bundle_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """compat.httpx.transport_on gives the transport and its replacement pool one TLS context:
    each context loads the CA bundle (~0.8 MiB of certificates), and the first was garbage."""
    loads: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(self)
        real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    given: list[ssl.SSLContext] = []

    def pool(ssl_context: ssl.SSLContext) -> httpcore.AsyncConnectionPool:
        given.append(ssl_context)
        return httpcore.AsyncConnectionPool(ssl_context)

    compat_httpx.transport_on(pool)
    assert len(loads) == 1
    assert given == loads


# --- no framework internals outside gateway.compat ----------------------------------------

GATEWAY = Path(__file__).resolve().parents[1] / "gateway"
LIBRARIES = ("strawberry", "graphql", "sqlalchemy", "sqlmodel", "asyncpg", "httpx", "httpcore")
PUBLIC_MODULES = {
    "strawberry", "strawberry.asgi", "strawberry.dataloader", "strawberry.extensions",
    "strawberry.http", "strawberry.relay", "strawberry.scalars", "strawberry.schema.config",
    "strawberry.tools", "strawberry.types",
    "graphql",
    "sqlalchemy", "sqlalchemy.dialects.postgresql", "sqlalchemy.dialects.sqlite",
    "sqlalchemy.engine", "sqlalchemy.event", "sqlalchemy.exc", "sqlalchemy.ext.asyncio",
    "sqlalchemy.orm", "sqlalchemy.pool", "sqlalchemy.sql", "sqlalchemy.sql.expression",
    "sqlalchemy.types",
    "sqlmodel",
    "asyncpg", "asyncpg.exceptions",
    "httpx", "httpcore",
}  # fmt: skip
"""The documented import paths; anything deeper (``strawberry.schema.schema``,
``sqlalchemy.sql.compiler``, ``graphql.execution.*``...) is an internal module."""
ALLOWED_PRIVATE = {
    # the logging HOWTO's own advice ("Optimization"): no caller lookup per record
    ("logs.py", "_srcfile"),
}
NAMED_TUPLE_API = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}
"""Public despite the underscore: the documented methods of every ``typing.NamedTuple``."""


def _outside_compat() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(GATEWAY.rglob("*.py")):
        relative = path.relative_to(GATEWAY).as_posix()
        if not relative.startswith("compat/"):
            yield relative, ast.parse(path.read_text(), relative)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_internal_library_module_is_imported_outside_compat() -> None:
    found = []
    for relative, tree in _outside_compat():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                modules, names = [alias.name for alias in node.names], []
            else:
                continue
            for module in modules:
                if module.split(".")[0] in LIBRARIES and (
                    module not in PUBLIC_MODULES or any(map(_is_private, names))
                ):
                    found.append(f"{relative}:{node.lineno} imports {module} {names}")
    assert not found, "framework internals belong in gateway/compat/: " + "; ".join(found)


def test_no_private_attribute_is_reached_outside_compat() -> None:
    """``x._name`` on anything but ``self``/``cls``: a library's private attribute (the
    gateway's own classes keep theirs to ``self``)."""
    found = []
    for relative, tree in _outside_compat():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and _is_private(node.attr)
                and node.attr not in NAMED_TUPLE_API
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and (relative, node.attr) not in ALLOWED_PRIVATE
            ):
                found.append(f"{relative}:{node.lineno} {ast.unparse(node)}")
    assert not found, "framework internals belong in gateway/compat/: " + "; ".join(found)


def _library_classes(cls: type) -> list[type]:
    return [c for c in cls.__mro__[1:] if c.__module__.split(".")[0] in LIBRARIES]


def test_no_private_member_of_a_library_class_is_overridden_or_used_outside_compat() -> None:
    """A gateway class built on a library class defines or uses none of its private members
    (``_process_result``...): those live in gateway.compat."""
    found = []
    for relative, tree in _outside_compat():
        classes = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.bases]
        if not classes:
            continue  # nothing to look up (and no module imported for nothing)
        dotted = "gateway." + relative.removesuffix(".py").replace("/", ".")
        module = importlib.import_module(dotted.removesuffix(".__init__"))
        for node in classes:
            cls = getattr(module, node.name, None)
            bases = _library_classes(cls) if isinstance(cls, type) else []
            if not bases:
                continue
            used = {
                n.attr
                for n in ast.walk(node)
                if isinstance(n, ast.Attribute) and _is_private(n.attr)
            } | {
                n.name
                for n in ast.walk(node)
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and _is_private(n.name)
            }
            for name in sorted(used):
                owners = [b.__qualname__ for b in bases if name in vars(b)]
                if owners:
                    found.append(f"{relative}: {node.name}.{name} is {owners[0]}'s private")
    assert not found, "framework internals belong in gateway/compat/: " + "; ".join(found)
