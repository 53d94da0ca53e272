"""SMS codes over GraphQL: request one, read it where the sandbox provider keeps it, use it;
and the gateway that sends them (the ``gw`` fixture of the modules that import ``sms_gateway``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx
import pytest

from tests.support.harness import Configure, Harness, running

REQUEST = """
mutation($phone: String!, $purpose: SmsPurpose!, $app: String!) {
  requestSmsCode(input: {phone: $phone, purpose: $purpose, app: $app}) {
    __typename
    ... on RequestSmsCodeSuccess { sent }
    ... on Error { code message }
    ... on InvalidInputError { field }
    ... on RateLimitedError { retryAfterSeconds }
    ... on UpstreamError { retryAfterSeconds }
  }
}
"""
LOGIN = """
mutation($phone: String!, $code: String!, $app: String!) {
  loginBySmsCode(input: {phone: $phone, code: $code, app: $app, client: {platform: "web"}}) {
    __typename
    ... on LoginSuccess { accessToken isNewAccount account { id identities { kind label } } }
    ... on Error { code message }
    ... on InvalidInputError { field }
  }
}
"""
BIND = """
mutation($phone: String!, $code: String!) {
  bindPhoneBySms(input: {phone: $phone, code: $code}) {
    __typename
    ... on BindPhoneBySmsSuccess { linked account { id identities { kind label } } }
    ... on Error { code message }
  }
}
"""


@pytest.fixture(name="gw")
async def sms_gateway(database_url: str, configure: Configure) -> AsyncIterator[Harness]:
    """A module's ``gw`` when it imports this: the gateway with the sandbox SMS provider
    (people with phone numbers)."""
    async with running(configure(database_url, sms={"provider": "sandbox"})) as harness:
        yield harness


class Gateway(Protocol):
    client: httpx.AsyncClient

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]: ...


async def request_code(
    gw: Gateway, phone: str, purpose: str = "LOGIN", app: str = "shop-mp"
) -> dict[str, Any]:
    body = await gw.gql(REQUEST, {"phone": phone, "purpose": purpose, "app": app})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["requestSmsCode"]
    return result


async def last_code(client: httpx.AsyncClient, phone: str) -> str:
    answer = await client.get("/sandbox/sms", params={"phone": phone})
    assert answer.status_code == 200, answer.text
    messages = answer.json()["messages"]
    assert messages, f"no SMS to {phone}"
    return str(messages[-1]["code"])


async def sms_login(gw: Gateway, phone: str, code: str, app: str = "shop-mp") -> dict[str, Any]:
    body = await gw.gql(LOGIN, {"phone": phone, "code": code, "app": app})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["loginBySmsCode"]
    return result


async def code_login(gw: Gateway, phone: str, app: str = "shop-mp") -> dict[str, Any]:
    """Request a code, read it, log in with it."""
    sent = await request_code(gw, phone, app=app)
    assert sent["__typename"] == "RequestSmsCodeSuccess", sent
    return await sms_login(gw, phone, await last_code(gw.client, phone), app)


async def bind(gw: Gateway, token: str, phone: str, code: str) -> dict[str, Any]:
    body = await gw.gql(BIND, {"phone": phone, "code": code}, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["bindPhoneBySms"]
    return result
