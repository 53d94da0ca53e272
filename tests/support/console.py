"""The operator console over HTTP: an operator made through the use case the CLI calls, its
login with password and TOTP (pyotp), forms posted with the page's CSRF token."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pyotp

from gateway.console.model import Role

NEW_PASSWORD = "Quiet-Harbour-4471"
_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def csrf(page: str) -> str:
    found = _TOKEN.search(page)
    assert found, "no CSRF field on the page"
    return found.group(1)


def code(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


async def make(app: Any, name: str, role: Role) -> dict[str, str]:
    made: dict[str, str] = (await app.state.admin.console.add(name, role, "test")).as_dict()
    return made


async def post(client: httpx.AsyncClient, path: str, data: dict[str, str]) -> httpx.Response:
    """A form posted from ``path``'s own page (or the search page): its CSRF token included."""
    page = await client.get("/admin/login" if path == "/admin/login" else "/admin")
    return await client.post(path, data={"csrf_token": csrf(page.text), **data})


async def log_in(
    client: httpx.AsyncClient, made: dict[str, str], *, change: bool = True, step: int = 0
) -> httpx.Response:
    form = {
        "name": made["name"],
        "password": made["password"],
        "code": code(made["totp_secret"], step),
    }
    answer = await post(client, "/admin/login", form)
    if change and answer.status_code == 303:
        page = await client.get("/admin/password")
        changed = await client.post(
            "/admin/password",
            data={
                "csrf_token": csrf(page.text), "current": made["password"],
                "new": NEW_PASSWORD, "repeat": NEW_PASSWORD,
            },
        )  # fmt: skip
        assert changed.status_code == 303, changed.text
    return answer
