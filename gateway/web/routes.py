"""The web routes the gateway mounts: the pages' stylesheet, the hosted login page, logout."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from gateway.web.pages import STATIC_PATH, stylesheet


def routes() -> list[BaseRoute]:
    return [
        Route(f"{STATIC_PATH}/{{name}}", stylesheet, methods=["GET"]),
    ]
