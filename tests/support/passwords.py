"""Username/password accounts through GraphQL over HTTP: register, log in, change the password,
from any client IP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.support.harness import Harness

CLIENT = {"platform": "ios", "channel": "app-store", "deviceParam": "model=iPhone15,2"}


GOOD_PASSWORD = "violet-Tractor-88"


_RESULT_FIELDS = """
    __typename
    ... on LoginSuccess {
      accessToken refreshToken isNewAccount
      account { id identities { id kind label } }
    }
    ... on Error { code message }
    ... on InvalidInputError { field }
    ... on RateLimitedError { retryAfterSeconds }
"""


_WEAK = "... on WeakPasswordError { field }"


_ARGS = "$username: String!, $password: String!, $app: String!, $client: ClientInput!"


_INPUT = "{username: $username, password: $password, app: $app, client: $client}"


REGISTER = (
    f"mutation({_ARGS}) {{ registerWithPassword(input: {_INPUT}) {{ {_RESULT_FIELDS} {_WEAK} }} }}"
)


PASSWORD_LOGIN = (
    f"mutation({_ARGS}) {{ loginWithPassword(input: {_INPUT}) {{ {_RESULT_FIELDS} }} }}"
)


CHANGE_PASSWORD = """
mutation($current: String!, $new: String!, $client: ClientInput) {
  changePassword(input: {currentPassword: $current, newPassword: $new, client: $client}) {
    __typename
    ... on ChangePasswordSuccess { revokedSessions }
    ... on Error { code message }
    ... on WeakPasswordError { field }
  }
}
"""


VIEWER = "{ viewer { id identities { id kind label } } }"


async def gql(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


@asynccontextmanager
async def from_ip(gw: Harness, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same gateway whose requests come from ``ip``."""
    transport = httpx.ASGITransport(app=gw.app, client=(ip, 40000))
    async with httpx.AsyncClient(base_url="http://gateway", transport=transport) as http:
        yield http


async def register(
    gw: Harness,
    username: str,
    password: str = GOOD_PASSWORD,
    *,
    app: str = "shop-mp",
    client: dict[str, Any] | None = None,
    http: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    return await _password_mutation(gw, REGISTER, username, password, app, client, http)


async def registered(gw: Harness, username: str, password: str = GOOD_PASSWORD) -> dict[str, Any]:
    result = await register(gw, username, password)
    assert result["__typename"] == "LoginSuccess", result
    return result


async def password_login(
    gw: Harness,
    username: str,
    password: str = GOOD_PASSWORD,
    *,
    app: str = "shop-mp",
    client: dict[str, Any] | None = None,
    http: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    return await _password_mutation(gw, PASSWORD_LOGIN, username, password, app, client, http)


async def _password_mutation(
    gw: Harness,
    document: str,
    username: str,
    password: str,
    app: str,
    client: dict[str, Any] | None,
    http: httpx.AsyncClient | None,
) -> dict[str, Any]:
    """registerWithPassword or loginWithPassword: the one field of the answer's data."""
    variables = {"username": username, "password": password, "app": app, "client": client or CLIENT}
    body = await gql(http or gw.client, document, variables)
    (result,) = body["data"].values()
    assert isinstance(result, dict)
    return result


async def viewer_id(gw: Harness, token: str) -> str | None:
    return await gw.viewer_id(token)


def fullwidth(text: str) -> str:
    """The fullwidth lookalike of an ASCII string (what NFKC folds back)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


async def change_password(
    gw: Harness, token: str | None, current: str, new: str, client: dict[str, Any] | None = None
) -> dict[str, Any]:
    variables = {"current": current, "new": new, "client": client}
    body = await gql(gw.client, CHANGE_PASSWORD, variables, token)
    result: dict[str, Any] = body["data"]["changePassword"]
    return result
