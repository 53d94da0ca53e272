"""Plain input types built directly (checked against strawberry-graphql 0.341.2).

strawberry turns an input value into its class field by field through ``convert_argument``,
resolving each field's type and GraphQL name on every request: ~60 us for ``loginByCode``'s
input and its ``client``, ~3% of a returning login's CPU. An input type whose fields are all
plain (``str``, ``int``, ``float``, ``bool``, ``ID``, optional or not, or plain input types)
needs none of that: its value is the class called with each given field's value as graphql-core
coerced it (a nested plain input built the same way, a null or unset one passed as it is), and
with ``None`` for each field that has no default and was not given. ``plain_inputs`` gives such
types a builder doing exactly that, decided once from their definitions; any other type (an
enum, a list, a ``Maybe``, a custom scalar, a type with a builder of its own) is left to
strawberry.

What it assumes, checked by tests/test_plain_inputs.py against the installed strawberry:
``convert_argument`` builds a type whose definition has a ``from_input`` (the hook strawberry
gives integrations that build their own values, as ``strawberry.pydantic`` does) through it;
without one, its result for every plain input type of the schema equals the builder's; and the
only other reader of ``from_input``, the ``Maybe`` null rule, has nothing to check on a type
without ``Maybe`` fields. Only ``gateway.api`` imports this module (an import-linter contract).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any

import strawberry
from strawberry.schema.base import BaseSchema
from strawberry.types.base import (
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.unset import UNSET

__all__ = ["plain_inputs"]

_LEAVES: tuple[object, ...] = (str, int, float, bool, strawberry.ID)

Build = Callable[[type, Mapping[str, Any], Any], Any]
"""``from_input``'s signature: the class to build, the coerced value, strawberry's context."""


def plain_inputs(schema: BaseSchema) -> list[str]:
    """Give every plain input type of ``schema`` its builder (``from_input``); the names of
    the types given one. A type's definition is its class's: every schema of it shares it."""
    names = []
    for entry in schema.schema_converter.type_map.values():
        definition = entry.definition
        if not isinstance(definition, StrawberryObjectDefinition) or not definition.is_input:
            continue
        if definition.from_input is None:
            try:
                definition.from_input = _builder(definition, schema.config, frozenset())
            except _NotPlain:
                continue
        if _ours(definition.from_input):
            names.append(definition.name)
    return sorted(names)


class _NotPlain(Exception):
    """A field of the type (or of an input in it) is not plain: strawberry converts it."""


Nested = Callable[[Mapping[str, Any]], Any]


def _builder(definition: StrawberryObjectDefinition, config: Any, seen: frozenset[str]) -> Build:
    """The builder of a plain input type (``_NotPlain`` for any other)."""
    if definition.name in seen:  # a type that contains itself: left to strawberry
        raise _NotPlain
    seen |= {definition.name}
    fields: list[tuple[str, str, Nested | None]] = []
    for field in definition.fields:
        nested = _nested(field.resolve_type(type_definition=definition), config, seen)
        fields.append((config.name_converter.from_field(field), field.python_name, nested))
    # strawberry's own first step: ``None`` for each field without a default, then the given
    unset = {
        field.python_name: None
        for field in definition.fields
        if field.default_value is MISSING and field.default_factory is MISSING
    }

    def build(type_: type, value: Mapping[str, Any], _context: Any = None) -> Any:
        kwargs = dict(unset)
        for name, python_name, nested in fields:
            if name in value:
                item = value[name]
                if nested is not None and item is not None and item is not UNSET:
                    item = nested(item)
                kwargs[python_name] = item
        return type_(**kwargs)

    build.plain = True  # type: ignore[attr-defined]
    return build


def _nested(type_: Any, config: Any, seen: frozenset[str]) -> Nested | None:
    """How a field's value is built: ``None``, as it is (a plain leaf); a function, a plain
    input; ``_NotPlain`` for any other field."""
    if isinstance(type_, StrawberryMaybe):
        raise _NotPlain
    if isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    if any(type_ is leaf for leaf in _LEAVES):
        return None
    if not has_object_definition(type_):
        raise _NotPlain
    inner = type_.__strawberry_definition__
    if not inner.is_input or not (inner.from_input is None or _ours(inner.from_input)):
        raise _NotPlain
    build = _builder(inner, config, seen)
    cls = type_
    return lambda value: build(cls, value, None)


def _ours(build: object) -> bool:
    """A builder ``plain_inputs`` made (not another integration's)."""
    return bool(getattr(build, "plain", False))
