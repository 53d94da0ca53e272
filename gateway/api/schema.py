"""The schema and its guards: caches, depth/alias/token limits, masked unexpected errors."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    parse,
)
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from gateway import i18n
from gateway.api.account_mutations import AccountMutation
from gateway.api.context import Context
from gateway.api.errors import DOMAIN
from gateway.api.mutations import Mutation
from gateway.api.profile_mutations import ProfileMutation
from gateway.api.queries import Query
from gateway.api.rights_mutations import RightsMutation
from gateway.api.site_mutations import SiteMutation
from gateway.api.sms_mutations import SmsMutation
from gateway.api.weblogin_mutations import WebLoginMutation, WebLoginQuery
from gateway.api.wechat_mutations import WechatMutation
from gateway.compat.strawberry import (
    OVER_POST,
    LeanExecutionContext,
    LeanSchema,
    graphql_schema,
    provided_operation_name,
    validate,
)
from gateway.compat.strawberry.inputs import plain_inputs
from gateway.config import Settings
from gateway.errors import N_
from gateway.sessions.tokens import TokenRejected
from gateway.store.db import is_unavailable

log = logging.getLogger("gateway.api")
MASKED = N_("Internal server error.")
UNAVAILABLE = N_("Service temporarily unavailable; retry shortly.")


def _is_unexpected(error: GraphQLError) -> bool:
    """What came from a resolver crash, as opposed to GraphQL's own (validation) errors."""
    original = error.original_error
    # a rejected token turns the whole answer into a 401
    return original is not None and not isinstance(original, GraphQLError | TokenRejected)


def _masked(error: GraphQLError, context: Any) -> GraphQLError:
    """What the client sees of an unexpected error: nothing of it, but where it happened, in
    the request's language; a lost database is a retryable ``UNAVAILABLE`` error, logged as a
    one-line warning (an outage is not a bug: no traceback per request while it lasts)."""
    if not _is_unexpected(error):
        return error
    unavailable = is_unavailable(error.original_error)
    if unavailable:
        log.warning("unavailable at %s: %s", error.path, type(error.original_error).__name__)
    else:
        log.error("unexpected error at %s", error.path, exc_info=error.original_error)
    locale = context.locale if isinstance(context, Context) else i18n.DEFAULT_LOCALE
    return GraphQLError(
        i18n.gettext(locale, DOMAIN, UNAVAILABLE if unavailable else MASKED),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": "UNAVAILABLE"} if unavailable else None,
    )


MAX_TOKENS = 2000
# Shared by every request and schema: parse and validation are pure functions of their input.
_parse = functools.lru_cache(maxsize=512)(parse)
_validate = functools.lru_cache(maxsize=512)(validate)


@functools.lru_cache(maxsize=512)
def _validate_text(
    schema: GraphQLSchema,
    query: str,
    options: tuple[tuple[str, Any], ...],
    rules: tuple[type[ASTValidationRule], ...],
) -> list[GraphQLError]:
    """The validation of the document ``query`` parses to (with ``options``), cached by its
    text: a document tree hashes itself whole at every cache lookup (~30 us for a login's or
    a refresh's, every request), a string once. Equal to ``_validate`` on the parsed
    document: ``_parse`` is a pure function of the same text and options."""
    return _validate(schema, _parse(query, **dict(options)), rules)


def mask_errors(result: Any, context: Any) -> None:
    """Replace the unexpected errors of ``result`` (any result type: all have ``errors``) by
    what a client may see of them; shared by the operation hook and trusted documents' path
    (gateway.api.prepared), so the rule is written once."""
    errors = getattr(result, "errors", None)
    if errors:
        result.errors = [_masked(e, context) for e in errors]


class GatewayExtension(SchemaExtension):
    """Every per-request guard in one extension: token limit, cached parse, the depth/alias
    rules, cached validation, masked errors. Strawberry builds a context manager per hook per
    extension per request, so five small extensions cost more than the work they do. Errors
    are masked here, on the public ``on_operation`` hook and the operation's ``result``,
    rather than by subclassing strawberry's ``MaskErrors`` (whose useful parts are private
    methods, and whose result check is a runtime-checkable Protocol's ~10 us isinstance)."""

    def __init__(self, rules: tuple[type[ASTValidationRule], ...]) -> None:
        self._rules = rules

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = MAX_TOKENS
        context.validation_rules = context.validation_rules + self._rules
        yield
        mask_errors(context.result, context.context)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.graphql_document = _parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        options = tuple(sorted(context.parse_options.items()))
        rules = context.validation_rules
        errors = _validate_text(graphql_schema(context.schema), context.query, options, rules)
        named = provided_operation_name(context)  # operation_name defaults to the first one
        if not errors and named is None and _operations(context) > 1:
            # graphql-core would run the first; the spec says it is a request error
            errors = [GraphQLError("Must provide operationName: the document has several.")]
        context.pre_execution_errors = errors
        yield


def _operations(context: Any) -> int:
    document = context.graphql_document
    return sum(isinstance(d, OperationDefinitionNode) for d in document.definitions)


_EXTRA_RULES: dict[int, tuple[type[ASTValidationRule], ...]] = {}
"""Each schema's rules beyond strawberry's own (``id`` of a schema ``_schema`` built: they
live as long as the process)."""


def prepare(schema: Any, document: str) -> DocumentNode | None:
    """``document`` parsed and validated exactly as a request's would be (the same parse
    options, strawberry's starting rules plus this schema's, the same caches), when it holds
    one operation and passes; ``None`` otherwise, and the request path answers it."""
    extra = _EXTRA_RULES.get(id(schema))
    if extra is None:  # not a schema of ``build_schema``: its rules are not known here
        return None
    start = ExecutionContext(query=document, schema=schema, allowed_operations=OVER_POST)
    rules = start.validation_rules + extra
    try:
        parsed = _parse(document, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None
    start.graphql_document = parsed
    if _operations(start) != 1 or _validate(graphql_schema(schema), parsed, rules):
        return None
    return parsed


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    return _schema(settings.max_query_depth, settings.max_aliases, settings.introspection)


@functools.cache
def _schema(max_depth: int, max_aliases: int, introspection: bool) -> strawberry.Schema:
    """One schema per set of limits: building it is slow, and its caches should be shared."""
    # The limit rules are built once: fresh rule classes per request would make every request
    # miss the validation cache (it is keyed by the rules). The extension itself is made per
    # request (a factory): extension instances hold per-request state.
    limit_rules = (
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    )
    # strawberry's DisableIntrospection adds this one rule; one extension is cheaper than two
    rules = limit_rules if introspection else (*limit_rules, NoSchemaIntrospectionCustomRule)
    schema = LeanSchema(
        query=merge_types("Query", (Query, WebLoginQuery)),
        mutation=merge_types(
            "Mutation",
            (
                Mutation,
                WechatMutation,
                AccountMutation,
                RightsMutation,
                ProfileMutation,
                SmsMutation,
                SiteMutation,
                WebLoginMutation,
            ),
        ),
        extensions=[lambda: GatewayExtension(rules)],
        execution_context_class=LeanExecutionContext,
        # without introspection, "did you mean ...?" hints would leak the schema piecemeal
        config=StrawberryConfig(auto_camel_case=True, disable_field_suggestions=not introspection),
    )
    _EXTRA_RULES[id(schema)] = rules
    plain_inputs(schema)  # inputs of plain fields built directly (compat.strawberry.inputs)
    return schema


def export_sdl() -> str:
    return build_schema(Settings(introspection=True)).as_str() + "\n"
