"""strawberry's undocumented parts a plan relies on (gateway.api.plan; checked against
strawberry-graphql 0.341.2): the resolve info strawberry builds for a resolver
(``resolve_info``), and a field's own resolver called as strawberry's per-field wrapper calls
it where the wrapper has nothing else to do (``plain_resolver``). Only ``gateway.api`` imports
this module (an import-linter contract); tests/test_plain_resolvers.py and
tests/test_prepared_documents.py check what it assumes against the installed strawberry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLField, GraphQLSchema
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.base import BaseSchema
from strawberry.schema.schema import (
    _OperationContextAwareGraphQLResolveInfo as _ResolveInfo,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

__all__ = ["plain_resolver", "resolve_info"]


def resolve_info(
    field: tuple[str, list[Any], Any, Any],
    path: Any,
    schema: GraphQLSchema,
    operation: Any,
    context: Any,
    operation_extensions: dict[str, Any] | None,
    variable_values: dict[str, Any] | None = None,
) -> Any:
    """The resolve info strawberry gives a resolver, for a document without fragments
    (gateway.api.plan); ``field``: name, nodes, type, parent type; ``variable_values``: the
    coerced variables' plain dict (``VariableValues.coerced``, as strawberry passes it; a query
    plan has none). Assumes
    (strawberry 0.341.x) ``StrawberryGraphQLCoreExecutionContext.build_resolve_info``: the
    private ``_OperationContextAwareGraphQLResolveInfo``, fields in this order, no root value,
    graphql-core 3.3's abort signal and async helpers last but one (``None``: unread here)."""
    fragments: dict[str, Any] = {}
    extensions: Any = operation_extensions  # None when the request had none, as strawberry's
    variables = {} if variable_values is None else variable_values
    return _ResolveInfo(
        *field, path, schema, fragments, None, operation, variables, context,
        optimized_is_awaitable, None, None, extensions,
    )  # fmt: skip


def plain_resolver(schema: BaseSchema, field: GraphQLField) -> Callable[[Any, Any], Any] | None:
    """The field's own resolver called as strawberry's per-field wrapper calls it, for a field
    where the wrapper has nothing else to do (gateway.api.plan); ``None`` otherwise. Assumes
    (strawberry 0.341.x) ``GraphQLCoreConverter.from_resolver``: the strawberry field at
    ``DEFINITION_BACKREF``; with no arguments, field extensions (permission classes are one)
    or exception handlers, its wrapper only makes the ``Info`` (``config.info_class``) and
    passes self, root, parent and info as ``get_arguments`` does, to ``get_result``."""
    found = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(found, StrawberryField):
        return None
    definition: StrawberryField = found
    resolver = definition.base_resolver
    converter = schema.schema_converter
    if (
        resolver is None
        or definition.arguments
        or definition.extensions
        or definition.permission_classes
        or converter._get_field_exception_handlers(definition)
    ):
        return None
    make_info = schema.config.info_class
    as_self = resolver.self_parameter is not None
    sources = [p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p]
    info_name = resolver.info_parameter.name if resolver.info_parameter else None
    get_result = definition.get_result

    def resolve(source: Any, info: Any) -> Any:
        kwargs = dict.fromkeys(sources, source)
        if info_name is not None:
            kwargs[info_name] = make_info(_raw_info=info, _field=definition)
        return get_result(source, None, [source] if as_self else [], kwargs)

    return resolve
