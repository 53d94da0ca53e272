"""graphql-core's undocumented parts the gateway relies on (checked against graphql-core
3.3.2). Imported by ``gateway.api`` (and ``gateway.compat.strawberry``) only; see
``gateway.compat`` for why this lives here and ``tests/test_compat.py`` for the checks.
"""

from __future__ import annotations

from typing import Any

from graphql.execution import Executor
from graphql.pyutils import Path


def release_async_helpers(context: Executor[Any]) -> None:
    """Drop the executor's reference cycle once the response is built.

    Assumes (graphql-core 3.3.x) that ``Executor.__init__`` (the base of strawberry's
    execution context) stores two of the executor's own bound methods in the instance
    attribute ``async_helpers``, that nothing reads it after ``build_response``, and that it
    is the only cycle through the executor: a request's objects then go when the answer is
    built instead of at the next full collection (bench/RESULTS.md, "No request leaves
    reference cycles"). Missing (an older or newer graphql-core), there is nothing to drop.
    """
    context.__dict__.pop("async_helpers", None)


def response_path(prev: Path | None, key: str | int, typename: str | None) -> Path:
    """A field's (or a list item's) place in the response, as graphql-core's executor makes
    it for resolve infos and errors. Assumes (graphql-core 3.3.x) ``graphql.pyutils.Path``
    (not exported by ``graphql``) with the constructor ``Path(prev, key, typename)``."""
    return Path(prev, key, typename)
