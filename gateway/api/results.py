"""Fields whose result is a union of a success type and the errors their use cases declare.

A resolver returns its success type and lets declared errors propagate; the field's
``TypedErrors`` extension, the one place that does so, turns them into their union members.
The union is built from the declarations, so it always covers what the use cases may raise.
An error nobody declared stays unexpected: it is masked and logged, never half-typed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Optional, Union

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.types import Info

from gateway.api.context import Context
from gateway.api.errors import Error, graphql_type, to_graphql
from gateway.api.inputs import check_arguments
from gateway.errors import ErrorSpec, GatewayError, InvalidInput, expand
from gateway.i18n import DEFAULT_LOCALE

_UNIONS: dict[str, tuple[Any, tuple[type[GatewayError], ...]]] = {}


class TypedErrors(FieldExtension):
    """Declared errors become their typed union member; anything else propagates."""

    def __init__(self, declared: tuple[type[GatewayError], ...]) -> None:
        self.declared = declared
        self.checks_input = InvalidInput in declared

    def _check(self, arguments: dict[str, Any], info: Info[Any, Any]) -> Error | None:
        """Every string argument is storable and bounded (``gateway.api.inputs``)."""
        if not (self.checks_input and arguments):
            return None
        try:
            check_arguments(arguments)
        except InvalidInput as exc:
            return to_graphql(exc, _locale(info))
        return None

    def resolve(
        self, next_: Callable[..., Any], source: Any, info: Info[Any, Any], **kwargs: Any
    ) -> Any:
        if refused := self._check(kwargs, info):
            return refused
        try:
            return next_(source, info, **kwargs)
        except self.declared as exc:
            return to_graphql(exc, _locale(info))

    async def resolve_async(
        self,
        next_: Callable[..., Awaitable[Any]],
        source: Any,
        info: Info[Any, Any],
        **kwargs: Any,
    ) -> Any:
        if refused := self._check(kwargs, info):
            return refused
        try:
            return await next_(source, info, **kwargs)
        except self.declared as exc:
            return to_graphql(exc, _locale(info))


def _locale(info: Info[Any, Any]) -> str:
    """The request's language, negotiated only now that an error is answered (once per
    request: ``Context.locale`` keeps it)."""
    context = info.context
    return context.locale if isinstance(context, Context) else DEFAULT_LOCALE


def result_union(name: str, success: type, declared: tuple[type[GatewayError], ...]) -> Any:
    """``success | <the GraphQL types of declared>`` as a named union, in declaration order."""
    members = dict.fromkeys([success, *(graphql_type(e) for e in declared)])
    return Annotated[Union[tuple(members)], strawberry.union(name)]  # noqa: UP007


def _typed(
    maker: Callable[..., Any],
    name: str,
    success: type,
    specs: tuple[ErrorSpec, ...],
    doc: str,
    optional: bool = False,
) -> Any:
    declared = expand(specs)
    if name not in _UNIONS:
        _UNIONS[name] = result_union(name, success, declared), declared
    union, known = _UNIONS[name]
    if known != declared:  # several fields may share a union only if they raise alike
        raise TypeError(f"{name} is declared with two different sets of errors")
    graphql = Optional[union] if optional else union  # noqa: UP045 (a runtime annotation)
    return maker(description=doc, graphql_type=graphql, extensions=[TypedErrors(declared)])


def mutation(name: str, success: type, *specs: ErrorSpec, description: str) -> Any:
    """A mutation answering ``name = success | declared errors``; ``specs`` are the use-case
    entry points it calls (their declarations) and errors the resolver raises itself."""
    return _typed(strawberry.mutation, name, success, specs, description)


def field(
    name: str, success: type, *specs: ErrorSpec, description: str, optional: bool = False
) -> Any:
    """Like :func:`mutation`, for a query field (``optional``: the resolver may answer null)."""
    return _typed(strawberry.field, name, success, specs, description, optional)


def declared_errors() -> dict[str, tuple[type[GatewayError], ...]]:
    """Every typed result union by name, with the errors it covers (for tests and docs)."""
    return {name: declared for name, (_, declared) in _UNIONS.items()}
