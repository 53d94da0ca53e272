"""Plain input types built directly (gateway.compat.strawberry.inputs) are built as strawberry
builds them: for every plain input type of the schema, over generated values (fields given or
not, nulls, nested inputs), the builder's value equals strawberry's own ``convert_argument``'s
without it; and what the module assumes of the installed strawberry still holds (an upgrade
that breaks it fails here, loudly)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import Enum
from typing import Any

import strawberry
from hypothesis import given, settings
from hypothesis import strategies as st
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryObjectDefinition, StrawberryOptional

from gateway.api.mutations import ClientInput, LoginByCodeInput
from gateway.api.schema import build_schema
from gateway.compat.strawberry.inputs import plain_inputs

SCHEMA = build_schema()
PLAIN = plain_inputs(SCHEMA)
INPUTS: dict[str, StrawberryObjectDefinition] = {
    entry.definition.name: entry.definition
    for entry in SCHEMA.schema_converter.type_map.values()
    if isinstance(entry.definition, StrawberryObjectDefinition) and entry.definition.is_input
}


@contextlib.contextmanager
def strawberrys_own() -> Iterator[None]:
    """Every input type without its builder, for strawberry's generic conversion."""
    saved = {name: definition.from_input for name, definition in INPUTS.items()}
    for definition in INPUTS.values():
        definition.from_input = None
    try:
        yield
    finally:
        for name, definition in INPUTS.items():
            definition.from_input = saved[name]


def _leaf(type_: Any) -> st.SearchStrategy[Any]:
    if type_ is bool:
        return st.booleans()
    if type_ is int:
        return st.integers()
    if type_ is float:
        return st.floats(allow_nan=False)
    return st.text(max_size=8)


def value_of(definition: StrawberryObjectDefinition) -> st.SearchStrategy[dict[str, Any]]:
    """A coerced input value: any subset of the fields, each a value of its type or null."""
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for field in definition.fields:
        type_ = field.resolve_type(type_definition=definition)
        if isinstance(type_, StrawberryOptional):
            type_ = type_.of_type
        inner = getattr(type_, "__strawberry_definition__", None)
        item = value_of(inner) if inner is not None else _leaf(type_)
        parts[SCHEMA.config.name_converter.from_field(field)] = st.none() | item
    return st.fixed_dictionaries({}, optional=parts)


def _same(built: Any, reference: Any) -> bool:
    """Equal, and of the same classes all the way down (dataclass equality alone is not)."""
    if type(built) is not type(reference):
        return False
    if not hasattr(reference, "__strawberry_definition__"):
        return bool(built == reference)
    return all(
        _same(getattr(built, f.python_name), getattr(reference, f.python_name))
        for f in reference.__strawberry_definition__.fields
    )


def _convert(value: Any, cls: type) -> Any:
    return convert_argument(
        value, cls, SCHEMA.schema_converter.scalar_registry, SCHEMA.config, path=("input",)
    )


def test_the_logins_inputs_are_plain_and_the_others_known() -> None:
    """The login's input and its client are built directly; an input strawberry must convert
    (an enum field) is left to it. A change in how strawberry describes types that turned the
    builders off would show here, not only as a slower login."""
    assert {"LoginByCodeInput", "ClientInput", "PasswordLoginInput"} <= set(PLAIN)
    assert "RequestSmsCodeInput" not in PLAIN
    assert set(INPUTS) - set(PLAIN) == {"RequestSmsCodeInput"}


def test_strawberry_builds_an_input_through_its_from_input() -> None:
    """The hook the builders ride on: ``convert_argument`` calls a definition's
    ``from_input`` with the class and the coerced value."""
    calls: list[tuple[type, dict[str, Any]]] = []

    @strawberry.input
    class Probe:
        name: str

    def build(type_: type, value: dict[str, Any], _context: Any) -> Any:
        calls.append((type_, value))
        return "built"

    Probe.__strawberry_definition__.from_input = build  # type: ignore[attr-defined]
    assert _convert({"name": "x"}, Probe) == "built"
    assert calls == [(Probe, {"name": "x"})]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_plain_input_is_built_as_strawberry_builds_it(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(PLAIN))
    definition = INPUTS[name]
    value = data.draw(value_of(definition))
    cls = definition.origin
    built = _convert(value, cls)
    with strawberrys_own():
        reference = _convert(value, cls)
    assert _same(built, reference), (name, value, built, reference)


def test_the_login_input_of_the_bench_is_built_as_strawberry_builds_it() -> None:
    value = {"app": "bench-mp", "code": "c0de", "client": {"platform": "bench"}, "state": None}
    built = _convert(value, LoginByCodeInput)
    with strawberrys_own():
        reference = _convert(value, LoginByCodeInput)
    assert _same(built, reference)
    assert built.client == ClientInput(platform="bench", channel=None, device_param=None)


@strawberry.enum
class Colour(Enum):
    RED = "red"


@strawberry.input
class WithEnum:
    colour: Colour


@strawberry.input
class WithList:
    names: list[str]


def theirs(type_: type, value: dict[str, Any], _context: Any) -> Any:
    return type_(**value)


@strawberry.input
class Theirs:
    name: str


Theirs.__strawberry_definition__.from_input = theirs  # type: ignore[attr-defined]


@strawberry.input
class Holder:
    theirs: Theirs | None = None


@strawberry.type
class OtherQuery:
    @strawberry.field
    def probe(self, a: WithEnum, b: WithList, c: Holder) -> int:
        return 0


def test_a_type_that_is_not_plain_keeps_strawberrys_conversion() -> None:
    """An enum field, a list, or another integration's ``from_input`` (in a nested input):
    no builder, and theirs is left alone."""
    assert plain_inputs(strawberry.Schema(query=OtherQuery)) == []
    for cls in (WithEnum, WithList, Holder):
        assert cls.__strawberry_definition__.from_input is None  # type: ignore[union-attr]
    assert Theirs.__strawberry_definition__.from_input is theirs  # type: ignore[attr-defined]
