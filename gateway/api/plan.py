"""Plans: a prepared query answered field by field, without graphql-core's general executor.

A prepared document (gateway.api.prepared) of a plain shape gets a plan when it is prepared:
one query operation without variables or directives, and fields without arguments, aliases
that collide, fragments, directives or meta fields (``__typename``), each of an object type or
a leaf (no interface or union). Most of the cost of a small query such as the SDK's viewer is
graphql-core's machinery around the resolvers (its execution context, field collection, the
generic completion), not the resolvers: the plan keeps the resolvers and drops the machinery.

Running a plan calls each field's own resolver (strawberry's wrapper, with the resolve info
strawberry would build: ``gateway.compat.strawberry.fields.resolve_info``) and completes each value
as graphql-core does (non-null, lists, ``is_type_of``, ``serialize``), awaiting siblings and
list items together as graphql-core gathers them, so DataLoaders batch the same.

It answers successes only. At the first error of any kind (a resolver's exception, a null for
a non-null field, a value that does not serialize) it gives up, and graphql-core answers the
request, which gives that error exactly as the reference path does. It does not run the
resolvers again: what each resolver the plan called gave (its value, or the exception it
raised) is kept by its response path (``Outcomes``), and graphql-core runs with a middleware
that answers those fields with it (``replaying``), calling only the resolvers the plan never
reached. A field that calls WeChat (``checkSession``) beside one that fails asks WeChat once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from inspect import isawaitable
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    default_field_resolver,
    get_named_type,
    is_leaf_type,
)

from gateway.compat.graphql import response_path
from gateway.compat.strawberry.fields import resolve_info


class GiveUp(Exception):
    """The plan does not answer this request: graphql-core will."""


@dataclass(frozen=True, slots=True)
class Step:
    """One field of a selection: its response key, what its resolve info names, its resolver,
    its type, and the steps of its own selection (none for a leaf)."""

    key: str
    field: tuple[str, list[FieldNode], Any, GraphQLObjectType]
    resolve: Callable[..., Any]
    type: Any
    children: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    operation: OperationDefinitionNode
    steps: tuple[Step, ...]


Outcomes = list[tuple[Any, bool, Any]]
"""What each resolver a plan called gave: its field's response path (graphql-core's ``Path``),
then ``False, value``, or ``True, exception`` for one it raised. A list of the paths as they
are, not a dict by their keys: the keys are made only when a plan gives up (``replaying``), so
a plan that answers pays one append per field."""


@dataclass(frozen=True, slots=True)
class PlanRun:
    schema: GraphQLSchema
    operation: OperationDefinitionNode
    context: Any
    extensions: dict[str, Any] | None
    outcomes: Outcomes = field(default_factory=list)


Direct = Callable[[GraphQLField], Callable[..., Any] | None]
"""A field's resolver without strawberry's per-field wrapper, when it is the same call
(``gateway.compat.strawberry.fields.plain_resolver``); ``None``: the wrapper (``field.resolve``)."""


def _wrapped(field: GraphQLField) -> Callable[..., Any] | None:
    return None


def make_plan(
    schema: GraphQLSchema, document: DocumentNode, direct: Direct = _wrapped
) -> Plan | None:
    """The plan of a validated one-operation document, or ``None`` when its shape is not
    plain (see the module's docstring): graphql-core runs it then. ``direct`` names the
    fields whose resolver is called without strawberry's wrapper."""
    if len(document.definitions) != 1:
        return None  # fragments
    (operation,) = document.definitions
    if (
        not isinstance(operation, OperationDefinitionNode)
        or operation.operation != OperationType.QUERY
        or operation.variable_definitions
        or operation.directives
        or schema.query_type is None
    ):
        return None
    steps = _steps(schema.query_type, operation.selection_set, direct)
    return None if steps is None else Plan(operation, steps)


def _steps(
    parent: GraphQLObjectType, selections: SelectionSetNode, direct: Direct
) -> tuple[Step, ...] | None:
    steps: list[Step] = []
    for node in selections.selections:
        step = make_step(parent, node, direct)
        if step is None or any(s.key == step.key for s in steps):
            return None
        steps.append(step)
    return tuple(steps)


def make_step(parent: GraphQLObjectType, node: Any, direct: Direct) -> Step | None:
    if not isinstance(node, FieldNode) or node.directives or node.arguments:
        return None
    name = node.name.value
    field = parent.fields.get(name)
    if field is None or name.startswith("__") or field.args:
        return None
    named = get_named_type(field.type)
    children: tuple[Step, ...] | None = ()
    if isinstance(named, GraphQLObjectType) and node.selection_set is not None:
        children = _steps(named, node.selection_set, direct)
    elif not is_leaf_type(named) or node.selection_set is not None:
        return None
    if children is None:
        return None
    key = node.alias.value if node.alias else name
    resolve = direct(field) or field.resolve or default_field_resolver
    return Step(key, (name, [node], field.type, parent), resolve, field.type, children)


async def run(
    plan: Plan,
    schema: GraphQLSchema,
    context: Any,
    extensions: dict[str, Any] | None,
    outcomes: Outcomes | None = None,
) -> dict[str, Any]:
    """The operation's ``data``; ``GiveUp`` (or the error itself) when it does not succeed,
    with what its resolvers gave in ``outcomes`` (for ``replaying``)."""
    run = PlanRun(schema, plan.operation, context, extensions, [] if outcomes is None else outcomes)
    return await _object(plan.steps, None, None, run)


def replaying(outcomes: Outcomes) -> Callable[..., Any]:
    """graphql-core's middleware for a plan that gave up: a field the plan resolved is
    answered with what its resolver gave (raised again, for an exception), never resolved
    again; any other field is resolved as usual."""

    by_path = {tuple(path.as_list()): (raised, got) for path, raised, got in outcomes}

    def answer(next_: Callable[..., Any], source: Any, info: Any, **arguments: Any) -> Any:
        found = by_path.get(tuple(info.path.as_list()))
        if found is None:
            return next_(source, info, **arguments)
        raised, outcome = found
        if raised:
            raise outcome
        return outcome

    return answer


async def _object(steps: tuple[Step, ...], source: Any, path: Any, run: PlanRun) -> dict[str, Any]:
    parent = steps[0].field[3].name
    pending: list[Coroutine[Any, Any, Any]] = []
    for step in steps:
        at = response_path(path, step.key, parent)
        info = resolve_info(step.field, at, run.schema, run.operation, run.context, run.extensions)
        try:
            value = step.resolve(source, info)
        except BaseException as exc:
            if isinstance(exc, Exception):
                run.outcomes.append((at, True, exc))
            for waiting in pending:
                waiting.close()
            raise
        if not isawaitable(value):  # an awaitable's is kept by complete_value, once settled
            run.outcomes.append((at, False, value))
        pending.append(complete_value(step, step.type, info, at, value, run))
    values = await _together(pending)
    return {step.key: value for step, value in zip(steps, values, strict=True)}


async def complete_value(
    step: Step, type_: Any, info: Any, path: Any, value: Any, run: PlanRun
) -> Any:
    """graphql-core's ``complete_value``, for the types a plan allows, without its errors.
    An awaitable's outcome is kept in ``run.outcomes`` (for ``replaying``) once it settles."""
    if isawaitable(value):  # kept inline: a coroutine more per field shows in the viewer's rate
        try:
            value = await value
        except Exception as exc:
            run.outcomes.append((path, True, exc))
            raise
        run.outcomes.append((path, False, value))
    if isinstance(value, Exception):
        raise GiveUp
    type_ = _nullable(type_, value)
    if value is None:
        return None
    if isinstance(type_, GraphQLList):
        return await _list(step, type_.of_type, info, path, value, run)
    if not step.children:
        return complete_leaf(type_, value)
    if type_.is_type_of is not None:
        matches = type_.is_type_of(value, info)
        if not (await matches if isawaitable(matches) else matches):
            raise GiveUp
    return await _object(step.children, value, path, run)


def _nullable(type_: Any, value: Any) -> Any:
    """The type to complete ``value`` as: a non-null type's inner one (``GiveUp`` for null)."""
    if isinstance(type_, GraphQLNonNull):
        if value is None:
            raise GiveUp
        return type_.of_type
    return type_


async def _list(step: Step, item: Any, info: Any, path: Any, value: Any, run: PlanRun) -> list[Any]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise GiveUp
    return await _together(
        [
            complete_value(step, item, info, response_path(path, i, None), v, run)
            for i, v in enumerate(value)
        ]
    )


def complete_leaf(type_: Any, value: Any) -> Any:
    serialized = type_.serialize(value)
    if serialized is Undefined or serialized is None:
        raise GiveUp
    return serialized


async def _together(pending: list[Coroutine[Any, Any, Any]]) -> list[Any]:
    """Each awaited, concurrently when there are several (as graphql-core gathers siblings
    and list items); every one has finished when an error is raised."""
    if len(pending) == 1:
        return [await pending[0]]
    results = await asyncio.gather(*pending, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
