"""People's rights through GraphQL: a mini-program login that says whether it cancelled a
pending deletion, and deleteAccount with its proof of who is asking."""

from __future__ import annotations

from typing import Any

from tests.support.harness import Harness

DELETE = """mutation($input: DeleteAccountInput) { deleteAccount(input: $input) { __typename
  ... on DeleteAccountSuccess { deletedAt effectiveAt pending } ... on Error { code message } } }"""
LOGIN = """mutation($app: String!, $code: String!) {
  loginByCode(input: {app: $app, code: $code, client: {platform: "ios"}}) { __typename
    ... on LoginSuccess { accessToken refreshToken isNewAccount deletionCancelled account { id } }
    ... on Error { code } } }"""


async def login(gw: Harness, user: str, app: str = "shop-mp") -> dict[str, Any]:
    code = await gw.mint(app, user)
    result: dict[str, Any] = (await gw.gql(LOGIN, {"app": app, "code": code}))["data"][
        "loginByCode"
    ]
    return result


async def delete(gw: Harness, token: str | None, **proof: Any) -> dict[str, Any]:
    body = await gw.gql(DELETE, {"input": proof or None}, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["deleteAccount"]
    return result
