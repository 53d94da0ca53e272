"""Strawberry's extension hooks, entered without re-wrapping them on every request; and its
executor, without the reference cycle that outlives every request.

For each lifecycle stage (operation, parsing, validation, execution) strawberry's runner looks
up every extension's hook, wraps it with ``contextlib.contextmanager`` (``functools.wraps``
included) and enters the result through an exit stack: ~7% of the CPU of a trivial query. The
gateway's schema has one extension with generator hooks, so here each hook is wrapped once per
extension class, and a stage with one such hook enters it directly. Any other shape (several
hooks in one stage, async or plain-function hooks) is left to strawberry's own managers.

graphql-core's executor keeps two of its own bound methods (``async_helpers``): a reference
cycle, so everything a request reached (its context, the starlette request, variables, the
result) waited for the cyclic collector, mostly a full collection, instead of going when the
answer was built. ``LeanExecutionContext`` drops them once the response is built.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any, Literal

from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

_Factory = Callable[[SchemaExtension], contextlib.AbstractContextManager[Any]]


_Found = _Factory | Literal[False] | None
_FACTORIES: dict[tuple[type, str], _Found] = {}


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


class LeanExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def build_response(self, data: dict[str, Any] | None) -> Any:
        """The last step of an execution (with or without errors): nothing after it gathers or
        tracks async work, so the helpers, and the cycle through them, can go."""
        response = super().build_response(data)
        del self.async_helpers
        return response
