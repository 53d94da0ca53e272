"""Login sessions through GraphQL (refreshToken, logout), and reading the access tokens the
gateway signs: their segments, and the private key behind their ``kid``."""

from __future__ import annotations

import base64
import json
from typing import Any

from joserfc.jwk import ECKey, KeySet

from tests.support.harness import Harness

REFRESH = """
mutation Refresh($token: String!, $client: ClientInput) {
  refreshToken(refreshToken: $token, client: $client) {
    __typename
    ... on RefreshSuccess { accessToken refreshToken expiresAt refreshExpiresAt account { id } }
    ... on Error { code message }
  }
}
"""
LOGOUT = """
mutation Logout($everywhere: Boolean!, $client: ClientInput) {
  logout(everywhere: $everywhere, client: $client) {
    __typename
    ... on LogoutSuccess { revokedSessions }
    ... on Error { code message }
  }
}
"""


async def refresh(gw: Harness, token: str, client: dict[str, Any] | None = None) -> dict[str, Any]:
    body = await gw.gql(REFRESH, {"token": token, "client": client})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["refreshToken"]
    return result


async def logout(
    gw: Harness,
    token: str | None,
    *,
    everywhere: bool = False,
    client: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = await gw.gql(LOGOUT, {"everywhere": everywhere, "client": client}, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["logout"]
    return result


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A JWT's header and claims, decoded without checking anything."""
    header, payload, _ = token.split(".")

    def decode(part: str) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(
            base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        )
        return decoded

    return decode(header), decode(payload)


def gateway_key(gw: Harness, kid: str) -> ECKey:
    """The private key the gateway signs with, read from its configured JWKS file."""
    path = gw.config.settings.signing_keys
    assert path is not None
    keys = KeySet.import_key_set(json.loads(path.read_text(encoding="utf-8")))
    key = keys.get_by_kid(kid)
    assert isinstance(key, ECKey)
    return key
