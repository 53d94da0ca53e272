"""The schema and its guards: caches, depth/alias/token limits, masked unexpected errors."""

from __future__ import annotations

import functools
import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from gateway.api.account_mutations import AccountMutation
from gateway.api.mutations import Mutation
from gateway.api.queries import Query
from gateway.api.wechat_mutations import WechatMutation
from gateway.config import Settings

log = logging.getLogger("gateway.api")
MASKED = "Internal server error."


def _is_unexpected(error: GraphQLError) -> bool:
    """Mask what came from a resolver crash; keep GraphQL's own (validation) errors."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False
    log.error("unexpected error at %s", error.path, exc_info=original)
    return True


def _is_unavailable(error: BaseException | None) -> bool:
    """The database (or another backing service) cannot be reached right now."""
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)
    return isinstance(error, SQLAlchemyTimeout | ConnectionError | TimeoutError | OSError)


class GatewayMaskErrors(MaskErrors):
    """Masks the unexpected; a lost database becomes a retryable ``UNAVAILABLE`` error."""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        if not _is_unavailable(error.original_error):
            return super().anonymise_error(error)
        return GraphQLError(
            "Service temporarily unavailable; retry shortly.",
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions={"code": "UNAVAILABLE"},
        )


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings()
    return _schema(settings.max_query_depth, settings.max_aliases, settings.introspection)


@functools.cache
def _schema(max_depth: int, max_aliases: int, introspection: bool) -> strawberry.Schema:
    """One schema per set of limits: building it is slow, and its caches should be shared."""
    # factories: a fresh extension per request; the parse/validation LRU caches are shared
    # The limit rules are built once: fresh rule classes per request would make every request
    # miss the validation cache (it is keyed by the rules).
    limit_rules = [
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    ]
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=2000),
        lambda: ParserCache(maxsize=512),
        lambda: AddValidationRules(limit_rules),
        lambda: ValidationCache(maxsize=512),
        lambda: GatewayMaskErrors(should_mask_error=_is_unexpected, error_message=MASKED),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query,
        mutation=merge_types("Mutation", (Mutation, WechatMutation, AccountMutation)),
        extensions=extensions,
        # without introspection, "did you mean ...?" hints would leak the schema piecemeal
        config=StrawberryConfig(auto_camel_case=True, disable_field_suggestions=not introspection),
    )


def export_sdl() -> str:
    return build_schema(Settings(introspection=True)).as_str() + "\n"
