"""strawberry's undocumented parts the gateway relies on (checked against strawberry-graphql
0.341.2). Only ``gateway.api`` imports this module (an import-linter contract): strawberry
stays in the API layer, and its internals in this one file. ``tests/test_compat.py`` checks
every assumption stated here against the installed strawberry.

- The schema's extensions runner (``LeanSchema``): for each lifecycle stage (operation,
  parsing, validation, execution) strawberry's runner looks up every extension's hook, wraps
  it with ``contextlib.contextmanager`` (``functools.wraps`` included) and enters the result
  through an exit stack: ~7% of the CPU of a trivial query. The gateway's schema has one
  extension with generator hooks, so here each hook is wrapped once per extension class, and
  a stage with one such hook enters it directly. Any other shape (several hooks in one stage,
  async or plain-function hooks) is left to strawberry's own managers. No public hook exists.
- The execution context (``LeanExecutionContext``): graphql-core's executor keeps two of its
  own bound methods, a reference cycle that kept every request's objects until a full
  collection; they are dropped once the response is built (``gateway.compat.graphql``).
- A plan's calls (gateway.api.plan): in this package's ``fields`` module.
- Input types of plain fields built directly (``from_input``): in this package's ``inputs``
  module.
- The view's undocumented override points and exceptions (``GraphQLView``,
  ``execute_over_post``), strawberry's own validation entry (``validate``), its name
  conversion (``camel_case``) and two private attributes (``graphql_schema``,
  ``provided_operation_name``): each below, with what it assumes.

Left in ``gateway.api.schema``, because they are the public fields strawberry's own built-in
extensions (``ParserCache``, ``ValidationCache``, ``MaxTokensLimiter``) use the same way:
``ExecutionContext.parse_options``, ``validation_rules``, ``graphql_document`` (set in
``on_parse``, strawberry then parses nothing), ``pre_execution_errors`` (set in
``on_validate``, strawberry then validates nothing) and ``result``. ``tests/test_compat.py``
checks that strawberry still honours them.

Why here and not in ``gateway.api``: one place per library for everything an upgrade may
break, next to the other libraries' (``gateway.compat``); the contract "only ``gateway.api``
imports this module" keeps strawberry out of every other layer as before.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import strawberry
from cross_web import HTTPException
from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from strawberry.asgi import GraphQL
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.http import GraphQLRequestData
from strawberry.schema._graphql_core import execute as graphql_execute
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.str_converters import to_camel_case

from gateway.compat.graphql import release_async_helpers

__all__ = [
    "OVER_POST",
    "CannotGetOperationTypeError",
    "GraphQLView",
    "HTTPException",
    "InvalidOperationTypeError",
    "LeanExecutionContext",
    "LeanSchema",
    "OperationNotAllowed",
    "PreExecutionError",
    "camel_case",
    "execute_document",
    "execute_over_post",
    "graphql_schema",
    "process_errors",
    "provided_operation_name",
    "validate",
]

_Factory = Callable[[SchemaExtension], contextlib.AbstractContextManager[Any]]
_Found = _Factory | Literal[False] | None
_FACTORIES: dict[tuple[type, str], _Found] = {}

RUNNER_STAGES = {
    "operation": "on_operation",
    "parsing": "on_parse",
    "validation": "on_validate",
    "executing": "on_execute",
}
"""``SchemaExtensionsRunner``'s stage methods and the ``SchemaExtension`` hook each enters."""


def _factory(extension_type: type, hook: str) -> _Found:
    """The hook of ``extension_type`` for a stage as a context-manager factory, made once per
    class; ``None`` when the class does not override it, ``False`` when it is not a generator
    (strawberry's manager handles those)."""
    key = (extension_type, hook)
    if key not in _FACTORIES:
        function = getattr(extension_type, hook)
        found: _Found = None
        if function is not getattr(SchemaExtension, hook):
            generator = inspect.isgeneratorfunction(function)
            found = contextlib.contextmanager(function) if generator else False
        _FACTORIES[key] = found
    return _FACTORIES[key]


class _Nothing:
    """A stage no extension hooks into."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


class _One:
    """A stage with one generator hook, for ``with`` and ``async with`` alike."""

    __slots__ = ("_manager",)

    def __init__(self, manager: contextlib.AbstractContextManager[Any]) -> None:
        self._manager = manager

    def __enter__(self) -> None:
        self._manager.__enter__()

    def __exit__(self, *exc: Any) -> bool | None:
        return self._manager.__exit__(*exc)

    async def __aenter__(self) -> None:
        self._manager.__enter__()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return self._manager.__exit__(*exc)


_NOTHING = _Nothing()


class LeanExtensionsRunner(SchemaExtensionsRunner):
    """Assumes (strawberry 0.341.x) that ``strawberry.extensions.runner.SchemaExtensionsRunner``
    is built per request as ``(execution_context=, extensions=)``, keeps the extension
    instances in ``self.extensions``, and that the schema enters each stage through its
    methods ``operation()``, ``parsing()``, ``validation()`` and ``executing()`` with ``with``
    or ``async with``, each stage running the ``SchemaExtension`` generator hook of the same
    stage (``RUNNER_STAGES``) around its work."""

    def _stage(self, hook: str) -> Any:
        """What strawberry's manager for ``hook`` would do, when it can be done cheaply;
        ``None`` when it cannot."""
        found = None
        for extension in self.extensions:
            factory = _factory(type(extension), hook)
            if factory is False or (factory is not None and found is not None):
                return None
            if factory is not None:
                found = factory(extension)
        return _NOTHING if found is None else _One(found)

    def operation(self) -> Any:
        return self._stage("on_operation") or super().operation()

    def parsing(self) -> Any:
        return self._stage("on_parse") or super().parsing()

    def validation(self) -> Any:
        return self._stage("on_validate") or super().validation()

    def executing(self) -> Any:
        return self._stage("on_execute") or super().executing()


class LeanSchema(strawberry.Schema):
    """Strawberry's schema with a runner that does not re-wrap extension hooks per request.

    Assumes (strawberry 0.341.x) that ``Schema.execute`` gets its runner from the
    undocumented ``create_extensions_runner(execution_context, extensions)``, once per
    request."""

    def create_extensions_runner(
        self, execution_context: Any, extensions: list[Any]
    ) -> LeanExtensionsRunner:
        return LeanExtensionsRunner(execution_context=execution_context, extensions=extensions)


class LeanExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's graphql-core execution context, which lets the request go when answered.

    Assumes (strawberry 0.341.x) that the execution context strawberry uses by default is
    ``strawberry.schema.schema.StrawberryGraphQLCoreExecutionContext`` (subclassed so that
    its handling of operation extensions and resolve info stays), and (graphql-core 3.3.x)
    that ``build_response`` is the last step of every execution, with or without errors:
    nothing after it gathers or tracks async work."""

    def build_response(self, data: dict[str, Any] | None) -> Any:
        response = super().build_response(data)
        release_async_helpers(self)
        return response


def graphql_schema(schema: BaseSchema) -> GraphQLSchema:
    """The graphql-core schema strawberry built. Assumes (strawberry 0.341.x) it is kept in
    the private attribute ``Schema._schema``; strawberry offers no public accessor."""
    return schema._schema  # type: ignore[attr-defined, no-any-return]


def provided_operation_name(context: ExecutionContext) -> str | None:
    """The ``operationName`` the request carried, ``None`` when it named none.

    Assumes (strawberry 0.341.x) that ``ExecutionContext`` keeps it in the private
    ``_provided_operation_name`` (its public ``operation_name`` falls back to the document's
    first operation, which hides a request that should have named one)."""
    return context._provided_operation_name


validate: Callable[
    [GraphQLSchema, DocumentNode, tuple[type[ASTValidationRule], ...]], list[GraphQLError]
] = validate_document
"""Strawberry's own validation of a document: graphql-core's ``validate`` with the given rules
plus strawberry's (``Maybe`` and ``@oneOf`` inputs). Assumes (strawberry 0.341.x)
``strawberry.schema.schema.validate_document(schema, document, rules)``, a pure function
(the gateway caches it by its arguments)."""

camel_case: Callable[[str], str] = to_camel_case
"""How strawberry names a Python argument in the schema (``auto_camel_case``). Assumes
(strawberry 0.341.x) ``strawberry.utils.str_converters.to_camel_case``, which its
``NameConverter`` applies."""

OVER_POST = OperationType.from_http("POST")
"""The operation types a POST may run (all of them). Assumes (strawberry 0.341.x)
``strawberry.types.graphql.OperationType.from_http``, which the HTTP views use."""


def execute_over_post(
    schema: BaseSchema, operation: GraphQLRequestData, context: Any
) -> Awaitable[ExecutionResult]:
    """Run one operation of a POST as strawberry's view would (``execute_single``). A plain
    function (no coroutine of its own): the hot path pays no extra await.

    Assumes (strawberry 0.341.x) ``Schema.execute``'s keywords ``allowed_operation_types``
    and ``operation_extensions``, and that a document whose operation cannot be picked raises
    ``strawberry.schema.exceptions.CannotGetOperationTypeError``, whose
    ``as_http_error_reason()`` is the view's 400 message."""
    return schema.execute(
        operation.query,
        variable_values=operation.variables,
        context_value=context,
        operation_name=operation.operation_name,
        allowed_operation_types=OVER_POST,
        operation_extensions=operation.extensions,
    )


def execute_document(
    schema: BaseSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    context: Any,
    operation_extensions: dict[str, Any] | None,
    middleware: Callable[..., Any] | None = None,
) -> Any:
    """What ``Schema.execute`` runs once parsing and validation are done, for a document
    parsed and validated before (gateway.api.prepared): graphql-core's ``execute`` (an
    awaitable or a result), exactly as strawberry calls it.

    Assumes (strawberry 0.341.x, ``Schema._execute_operation``) that strawberry executes with
    the function ``strawberry.schema._graphql_core.execute`` (graphql-core's, incremental
    delivery being off), on ``Schema._schema``, with its ``execution_context_class`` as
    graphql-core's ``executor_class``, ``is_awaitable=strawberry.execution.
    optimized_is_awaitable``, the request's ``operation_extensions`` as a keyword of the
    execution context, no root value, and as middleware only the extensions that implement
    ``resolve`` (the gateway's implement none: tests/test_compat.py). ``middleware``: a mutation
    plan's replay (gateway.api.mutation_plan), which answers the root field itself."""
    return graphql_execute(
        graphql_schema(schema),
        document,
        root_value=None,
        middleware=None if middleware is None else [middleware],
        variable_values=variables,
        operation_name=operation_name,
        context_value=context,
        is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]  # strawberry passes it so
        executor_class=schema.execution_context_class,  # type: ignore[attr-defined]
        operation_extensions=operation_extensions,
    )


def process_errors(
    schema: BaseSchema, errors: list[GraphQLError], context: ExecutionContext
) -> None:
    """What strawberry does with a result's errors before extensions see them: drop "did you
    mean" hints when the schema disables suggestions, then ``process_errors`` (its logger).
    Assumes (strawberry 0.341.x) ``BaseSchema._process_errors(errors, execution_context)``."""
    schema._process_errors(errors, context)


class OperationNotAllowed(Exception):
    """The operation's type may not run over the request's method (a mutation over GET)."""


class GraphQLView(GraphQL[Any, None]):
    """Strawberry's ASGI view, its undocumented override points turned into named hooks.

    Assumes (strawberry 0.341.x, ``strawberry.http.async_base_view.AsyncBaseHTTPView``):
    ``run(request, context, root_value)`` answers an HTTP request, and a
    ``cross_web.HTTPException`` raised inside it is a request error (``HTTPException`` here);
    ``execute_operation(..., context=...)`` runs a request's operations once the context is
    built; ``execute_single`` runs one, and refuses an operation type the method does not allow
    with an exception whose ``__cause__`` is ``InvalidOperationTypeError``; ``parse_json``
    decodes a JSON body and ``parse_query_params`` a GET's parameters (all keyword and
    positional shapes as in ``tests/test_compat.py``).
    """

    async def before_operation(self, context: Any) -> None:
        """Before a request's operations run (after ``get_context``)."""

    def after_operation(self, context: Any) -> None:
        """After they ran, before the answer is built: raising here replaces the answer."""

    def refuse(self, request: Request) -> Response | None:
        """An answer that refuses ``request`` before strawberry sees it, or ``None``."""
        return None

    def request_error(self, request: Request, reason: str, status: int) -> Response:
        """The answer to a request error strawberry's view raised (``HTTPException``)."""
        raise HTTPException(status, reason)

    def decode_body(self, data: str | bytes) -> Any:
        """A POST's JSON body, decoded."""
        return self.decode_json(data)

    def decode_query(self, params: dict[str, Any]) -> dict[str, Any]:
        """A GET's query parameters, JSON ones decoded."""
        return super().parse_query_params(params)

    async def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        context = kwargs["context"]
        await self.before_operation(context)
        result = await super().execute_operation(*args, **kwargs)
        self.after_operation(context)
        return result

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                raise OperationNotAllowed from None
            raise

    async def run(  # type: ignore[override]
        self, request: Request, context: Any = strawberry.UNSET, root_value: Any = strawberry.UNSET
    ) -> Response:
        refused = self.refuse(request)
        if refused is not None:
            return refused
        try:
            return await super().run(request, context, root_value)
        except HTTPException as exc:
            return self.request_error(request, exc.reason, exc.status_code)

    def parse_json(self, data: str | bytes) -> Any:
        return self.decode_body(data)

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:  # type: ignore[override]
        return self.decode_query(dict(params))
