"""What the provider needs from the hosted login page's browser session (``gateway.web``):
who is logged in in this browser, since when and how, and ending that login."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response


class BrowserLogin(Protocol):
    @property
    def account_id(self) -> uuid.UUID: ...

    @property
    def auth_time(self) -> datetime | int | float: ...

    @property
    def amr(self) -> tuple[str, ...] | list[str]: ...


class Browser(Protocol):
    async def current(self, request: Request) -> BrowserLogin | None: ...

    async def end(self, request: Request, response: Response) -> None: ...


def epoch(value: datetime | int | float) -> int:
    """A login's ``auth_time`` in seconds since the epoch."""
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


class Pages(Protocol):
    """The hosted pages' renderer (``gateway.web.pages.Pages``): CSP, CSRF, language."""

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
        domain: str = "web",
        form_origins: Iterable[str] = (),
    ) -> HTMLResponse: ...

    def error(
        self, request: Request, title: str, detail: str, status: int = 400, *, domain: str = "web"
    ) -> HTMLResponse: ...

    def check_csrf(self, request: Request, form: Mapping[str, Any]) -> bool: ...
