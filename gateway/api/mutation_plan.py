"""Mutation plans: one root mutation field answered without graphql-core's general executor.

The login and refresh documents are one root mutation field with arguments (variables,
literals, input objects) and a typed result union (gateway.api.results) selected through
``__typename`` and inline fragments on its members. Like a query plan (gateway.api.plan) the
plan keeps the resolvers and drops the executor's machinery; unlike one, it may never give up
once the resolver has started, since a mutation writes. So:

- everything that could make it give up is decided first: the variables and arguments are
  coerced by graphql-core's own ``get_variable_values`` and ``get_argument_values``; when
  either fails, the plan gives up before anything ran, and graphql-core answers the request;
- the resolver is called as graphql-core calls it: strawberry's field wrapper (argument
  conversion, ``TypedErrors``, which checks string arguments and types declared errors);
- its value is completed by the plan's steps (graphql-core's rules, gateway.api.plan) on
  success. Anything else (the resolver raised, or completing its value met an error) is
  *replayed*: graphql-core executes the request, with a middleware that answers the root field
  with the value the resolver already gave (or raises the exception it raised) instead of
  calling it again. graphql-core then locates, propagates and reports the error by its own
  rules, and the result is processed and masked as any other (gateway.api.prepared).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
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
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    TypeNameMetaFieldDef,
    get_argument_values,
    get_variable_values,
    is_abstract_type,
)

from gateway.api.plan import Direct, GiveUp, PlanRun, Step, complete_leaf, complete_value, make_step
from gateway.compat.graphql import response_path
from gateway.compat.strawberry.fields import resolve_info


@dataclass(frozen=True, slots=True)
class MutationPlan:
    """The operation, its one root field (node, definition, response key) and, for each
    member of the field's union, the steps of the member's selection."""

    operation: OperationDefinitionNode
    node: FieldNode
    field: GraphQLField
    key: str
    union: GraphQLUnionType
    members: dict[str, tuple[Step, ...]]


Replay = Callable[[Callable[..., Any]], Any]
"""Runs the request by graphql-core with the given middleware (awaitable or result)."""


def make_mutation_plan(
    schema: GraphQLSchema, document: DocumentNode, direct: Direct
) -> MutationPlan | None:
    """The plan of a validated one-operation mutation of one root field whose type is a
    union, selected by ``__typename`` and inline fragments; ``None`` for any other shape."""
    root = _root(schema, document)
    if root is None:
        return None
    operation, node, field, union = root
    members: dict[str, tuple[Step, ...]] = {}
    for member in union.types:
        steps = _member_steps(schema, member, node.selection_set, direct)  # type: ignore[arg-type]
        if steps is None:
            return None
        members[member.name] = steps
    key = node.alias.value if node.alias else node.name.value
    return MutationPlan(operation, node, field, key, union, members)


def _root(
    schema: GraphQLSchema, document: DocumentNode
) -> tuple[OperationDefinitionNode, FieldNode, GraphQLField, GraphQLUnionType] | None:
    """The operation, its one root field (no directives) and the field's union, if so."""
    if len(document.definitions) != 1 or schema.mutation_type is None:
        return None
    (operation,) = document.definitions
    if (
        not isinstance(operation, OperationDefinitionNode)
        or operation.operation != OperationType.MUTATION
        or operation.directives
        or len(operation.selection_set.selections) != 1
    ):
        return None
    (node,) = operation.selection_set.selections
    if not isinstance(node, FieldNode) or node.directives or node.selection_set is None:
        return None
    field = schema.mutation_type.fields.get(node.name.value)
    if field is None or field.resolve is None:  # strawberry's wrapper, which the plan calls
        return None
    union = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    return (operation, node, field, union) if isinstance(union, GraphQLUnionType) else None


def _member_steps(
    schema: GraphQLSchema, member: GraphQLObjectType, selections: SelectionSetNode, direct: Direct
) -> tuple[Step, ...] | None:
    """The steps graphql-core's field collection gives ``member``, in document order:
    ``__typename`` and the fields of the inline fragments that apply to it (graphql-core's
    ``does_fragment_condition_match``: no condition, the member itself, or an abstract type
    the member belongs to)."""
    steps: list[Step] = []
    for node in selections.selections:
        if isinstance(node, InlineFragmentNode):
            if node.directives:
                return None
            if not _applies(schema, member, node):
                continue
            found = _member_steps(schema, member, node.selection_set, direct)
        elif isinstance(node, FieldNode) and node.name.value == "__typename":
            found = _typename(member, node)
        else:
            step = make_step(member, node, direct)
            found = None if step is None else (step,)
        if found is None:
            return None
        for step in found:
            if any(s.key == step.key for s in steps):
                return None  # merged fields: graphql-core's collection, not the plan
            steps.append(step)
    return tuple(steps)


def _applies(schema: GraphQLSchema, member: GraphQLObjectType, node: InlineFragmentNode) -> bool:
    if node.type_condition is None:
        return True
    condition = schema.get_type(node.type_condition.name.value)
    if condition is member:
        return True
    return is_abstract_type(condition) and schema.is_sub_type(condition, member)


def _typename(member: GraphQLObjectType, node: FieldNode) -> tuple[Step, ...] | None:
    if node.directives or node.arguments:
        return None
    key = node.alias.value if node.alias else "__typename"
    meta = TypeNameMetaFieldDef
    return (Step(key, ("__typename", [node], meta.type, member), meta.resolve, meta.type, ()),)  # type: ignore[arg-type]


async def run_mutation(
    plan: MutationPlan,
    schema: GraphQLSchema,
    variables: dict[str, Any] | None,
    context: Any,
    extensions: dict[str, Any] | None,
    replay: Replay,
) -> Any:
    """The operation's ``data`` (a dict), or a result graphql-core gave by replaying the
    resolver's outcome; ``GiveUp`` before the resolver when coercion fails."""
    try:  # anything that fails here fails before the resolver: graphql-core answers
        coerced = get_variable_values(
            schema, plan.operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):
            raise GiveUp
        arguments = get_argument_values(plan.field, plan.node, coerced)
    except Exception as exc:
        raise GiveUp from exc
    mutation = schema.mutation_type
    assert mutation is not None
    path = response_path(None, plan.key, mutation.name)
    field = (plan.node.name.value, [plan.node], plan.field.type, mutation)
    variables_ = coerced.coerced  # the plain dict, as strawberry gives resolvers
    info = resolve_info(field, path, schema, plan.operation, context, extensions, variables_)
    resolve = plan.field.resolve
    assert resolve is not None
    try:  # from here on, the request never gives up: it is answered or replayed
        value = resolve(None, info, **arguments)
        if isawaitable(value):
            value = await value
    except Exception as exc:
        return await _replayed(replay, plan, exc, raises=True)
    run = PlanRun(schema, plan.operation, context, extensions)
    try:
        return {plan.key: await _member(plan, value, info, path, run)}
    except Exception:
        return await _replayed(replay, plan, value, raises=False)


async def _member(plan: MutationPlan, value: Any, info: Any, path: Any, run: PlanRun) -> Any:
    """graphql-core's ``complete_abstract_value`` for a plan's union, without its errors."""
    if value is None or isinstance(value, Exception) or plan.union.resolve_type is None:
        raise GiveUp
    name = plan.union.resolve_type(value, info, plan.union)
    if isawaitable(name):
        name = await name
    steps = plan.members.get(name) if isinstance(name, str) else None
    member = run.schema.get_type(name) if isinstance(name, str) else None
    if steps is None or not isinstance(member, GraphQLObjectType):
        raise GiveUp
    if member.is_type_of is not None:
        matches = member.is_type_of(value, info)
        if not (await matches if isawaitable(matches) else matches):
            raise GiveUp
    if not steps:
        return {}
    return await _fields(steps, value, path, run)


def _flat(type_: Any) -> bool:
    return not isinstance(
        type_.of_type if isinstance(type_, GraphQLNonNull) else type_, GraphQLList
    )


async def _fields(steps: tuple[Step, ...], source: Any, path: Any, run: PlanRun) -> dict[str, Any]:
    """The member's fields, completed as ``plan._object`` does but without a task per field:
    a scalar leaf (``RefreshSuccess``'s) completes at once, a value that is awaitable or has a
    selection (``LoginSuccess.account``) is completed by ``plan.complete_value`` in turn, not
    gathered (the same values; only DataLoaders could batch less). Any error: the caller
    replays it through graphql-core."""
    parent = steps[0].field[3].name
    values: list[Any] = []
    infos: list[tuple[Any, Any]] = []
    try:
        for step in steps:
            at = response_path(path, step.key, parent)
            info = resolve_info(
                step.field, at, run.schema, run.operation, run.context, run.extensions
            )
            infos.append((info, at))
            values.append(step.resolve(source, info))
        answer = {}
        for index, step in enumerate(steps):
            value, values[index] = values[index], None
            if step.children or not _flat(step.type):
                info, at = infos[index]
                answer[step.key] = await complete_value(step, step.type, info, at, value, run)
            else:
                answer[step.key] = _scalar(step.type, await value if isawaitable(value) else value)
        return answer
    finally:
        for value in values:
            if inspect.iscoroutine(value):
                value.close()


def _scalar(type_: Any, value: Any) -> Any:
    """``plan.complete_value`` for a leaf that is not a list."""
    if isinstance(value, Exception):
        raise GiveUp
    if isinstance(type_, GraphQLNonNull):
        if value is None:
            raise GiveUp
        type_ = type_.of_type
    return None if value is None else complete_leaf(type_, value)


async def _replayed(replay: Replay, plan: MutationPlan, outcome: Any, *, raises: bool) -> Any:
    """graphql-core's result for the request, the root field answered by ``outcome``."""

    def answer(next_: Callable[..., Any], source: Any, info: Any, **arguments: Any) -> Any:
        if info.path.prev is not None or info.field_name != plan.node.name.value:
            return next_(source, info, **arguments)
        if raises:
            raise outcome
        return outcome

    result = replay(answer)
    return await result if isawaitable(result) else result
