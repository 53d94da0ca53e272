"""An in-memory WeChat API emulator, as a Starlette app, for the demo, tests and benchmarks.

Users are made up by name: ``"alice"`` gets a deterministic openid per appid and unionid per
open platform, so tests can predict ids. All state lives on the returned app
(``app.state.sandbox``), never in module globals, so several emulators can share a process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from starlette.applications import Starlette

from .control import control_routes
from .state import SandboxApp, SandboxState
from .wechat_api import wechat_routes
from .wxacode import wxacode_route

__all__ = ["SandboxApp", "create_sandbox_app"]


def create_sandbox_app(
    apps: Sequence[SandboxApp],
    *,
    latency: float = 0.0,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """Emulate WeChat for ``apps``; ``latency`` seconds are slept in every WeChat endpoint."""
    state = SandboxState.build(apps, latency, clock)
    wechat = [*wechat_routes(state), wxacode_route(state)]
    app = Starlette(routes=[*wechat, *control_routes(state, [route.path for route in wechat])])
    app.state.sandbox = state
    return app
