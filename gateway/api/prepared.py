"""Trusted documents' fast path: parsed and validated once, then executed by graphql-core.

A trusted document (gateway.api.trusted) is one of a small fixed set, so its parse and
validation are done once, when the view is built, with the very functions, options and rules
a request's would use (``gateway.api.schema.prepare``). A request for it then skips
strawberry's per-request machinery (execution context, extension runner, the parse and
validation stages and their cache lookups, which hash the whole document tree) and goes
straight to graphql-core's executor, as strawberry itself calls it
(``gateway.compat.strawberry.execute_document``), with the same context object; its result
is logged and masked as strawberry and ``GatewayExtension`` do it. The two paths are proved
equal, answer for answer, by tests/test_prepared_documents.py.

Any other document that validates takes the same path once it has been prepared (``any_text``,
the view's setting with ``[performance] fast_paths``): its parse and validation are done by the
same ``prepare`` on its first request, and remembered by its text in a bounded LRU
(``TEXTS``), as strawberry's own parse and validation caches remember theirs. The floor's
``{ sandbox }`` and the viewer's unlisted ``{ viewer { id } }`` are such documents.

A mutation of one root field with a typed result (the login's, the refresh's) has a mutation
plan (gateway.api.mutation_plan), which never gives up once its resolver has started: an error
after that is *replayed* through graphql-core (``_executed`` with the plan's middleware), and
finished here as any other result. tests/test_mutation_plans.py proves the answers equal.

Anything the prepared document does not cover goes down the reference path: a document
that does not validate (its errors are the reference's to give), and a request naming an
operation the document does not have.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLField, OperationDefinitionNode
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionContext, ExecutionResult

from gateway.api.mutation_plan import MutationPlan, make_mutation_plan, run_mutation
from gateway.api.plan import GiveUp, Outcomes, Plan, make_plan, replaying
from gateway.api.plan import run as run_plan
from gateway.api.schema import mask_errors, prepare
from gateway.compat.strawberry import (
    OVER_POST,
    PreExecutionError,
    execute_document,
    graphql_schema,
    process_errors,
)
from gateway.compat.strawberry.fields import plain_resolver


@dataclass(frozen=True)
class Prepared:
    """A trusted document, parsed and validated, the name of its one operation, and its plan
    when its shape has one (gateway.api.plan, gateway.api.mutation_plan)."""

    document: DocumentNode
    name: str | None
    plan: Plan | None = None
    mutation: MutationPlan | None = None

    def serves(self, operation_name: str | None) -> bool:
        """Whether a request naming ``operation_name`` runs this document's operation."""
        return operation_name is None or operation_name == self.name


TEXTS = 256
"""Documents other than the trusted ones remembered prepared (or known not to prepare), by
text; a client sending ever new texts only evicts (the parse cache holds 512 texts already)."""


class PreparedDocuments:
    """Every trusted document that prepares, by its text (a request's, or the one a hash
    resolved to: then the very same string, and the lookup is an identity check); with
    ``any_text``, any other document too, once its first request has prepared it."""

    def __init__(self, schema: Any, documents: list[str], *, any_text: bool = False) -> None:
        self._schema = schema
        self._by_text: dict[str, Prepared] = {}
        for text in documents:
            prepared = self._prepare(text)
            if prepared is not None:
                self._by_text[text] = prepared
        self._texts = functools.lru_cache(maxsize=TEXTS)(self._prepare) if any_text else None

    def __len__(self) -> int:
        """The trusted documents prepared (the texts remembered since are not counted)."""
        return len(self._by_text)

    def find(self, operation: GraphQLRequestData) -> Prepared | None:
        text = operation.query
        if not text:
            return None
        prepared = self._by_text.get(text)
        if prepared is None and self._texts is not None:
            prepared = self._texts(text)
        if prepared is None or not prepared.serves(operation.operation_name):
            return None
        return prepared

    def _prepare(self, text: str) -> Prepared | None:
        document = prepare(self._schema, text)
        if document is None:
            return None
        schema = graphql_schema(self._schema)
        plan = make_plan(schema, document, self._direct)
        mutation = make_mutation_plan(schema, document, self._direct)
        return Prepared(document, _operation_name(document), plan, mutation)

    def _direct(self, field: GraphQLField) -> Callable[..., Any] | None:
        return plain_resolver(self._schema, field)

    async def execute(
        self, prepared: Prepared, operation: GraphQLRequestData, context: Any
    ) -> ExecutionResult:
        """What ``Schema.execute`` answers for this request, without parsing or validating.

        An exception out of graphql-core itself (not a resolver's: those are errors of the
        result) is answered as strawberry does, unmasked: its operation hook never resumes.
        A plan answers first when there is one; when it gives up, graphql-core runs the
        request, answering the fields the plan resolved with what their resolvers gave."""
        if prepared.plan is not None:
            outcomes: Outcomes = []
            data = await self._planned(prepared.plan, operation, context, outcomes)
            if data is not None:
                return ExecutionResult(data=data, errors=None)
            replay = replaying(outcomes) if outcomes else None
            return await self._executed(prepared, operation, context, replay)
        if prepared.mutation is not None:
            try:
                return await self._mutation(prepared, prepared.mutation, operation, context)
            except GiveUp:
                pass  # before its resolver: graphql-core answers, from the start
        return await self._executed(prepared, operation, context, None)

    async def _mutation(
        self, prepared: Prepared, plan: MutationPlan, operation: GraphQLRequestData, context: Any
    ) -> ExecutionResult:
        """The mutation plan's answer; a replay's result is finished as graphql-core's."""

        def replay(middleware: Callable[..., Any]) -> Any:
            return self._executed(prepared, operation, context, middleware)

        schema = graphql_schema(self._schema)
        answer = await run_mutation(
            plan, schema, operation.variables, context, operation.extensions, replay
        )
        if isinstance(answer, dict):
            return ExecutionResult(data=answer, errors=None)
        return answer  # type: ignore[no-any-return]

    async def _executed(
        self,
        prepared: Prepared,
        operation: GraphQLRequestData,
        context: Any,
        middleware: Callable[..., Any] | None,
    ) -> ExecutionResult:
        """graphql-core's answer, its errors processed and masked as strawberry does."""
        try:
            result = execute_document(
                self._schema,
                prepared.document,
                prepared.name,
                operation.variables,
                context,
                operation.extensions,
                middleware,
            )
            if isawaitable(result):
                result = await result
        except Exception as exc:
            error = exc if isinstance(exc, GraphQLError) else _coerced(exc)
            self._process([error], operation, context)
            return PreExecutionError(data=None, errors=[error])
        if result.errors:
            self._process(result.errors, operation, context)  # before masking, as strawberry
            mask_errors(result, context)
        return ExecutionResult(data=result.data, errors=result.errors)

    async def _planned(
        self, plan: Plan, operation: GraphQLRequestData, context: Any, outcomes: Outcomes
    ) -> dict[str, Any] | None:
        """The plan's ``data``; ``None`` when it gave up (an error is graphql-core's to give,
        with what the plan's resolvers gave in ``outcomes``)."""
        schema = graphql_schema(self._schema)
        try:
            return await run_plan(plan, schema, context, operation.extensions, outcomes)
        except Exception:
            return None

    def _process(
        self, errors: list[GraphQLError], operation: GraphQLRequestData, context: Any
    ) -> None:
        """Strawberry's processing of errors (hints dropped, then logged), as its path does."""
        execution = ExecutionContext(
            query=operation.query,
            schema=self._schema,
            allowed_operations=OVER_POST,
            context=context,
            variables=operation.variables,
            provided_operation_name=operation.operation_name,
            operation_extensions=operation.extensions,
        )
        process_errors(self._schema, errors, execution)


def _coerced(exc: Exception) -> GraphQLError:
    return GraphQLError(str(exc), original_error=exc)


def _operation_name(document: DocumentNode) -> str | None:
    (operation,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return operation.name.value if operation.name else None
