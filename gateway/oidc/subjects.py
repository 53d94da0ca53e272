"""The ``sub`` a client sees: the account's own opaque id for first-party clients, a pairwise
one for every other client (OpenID Connect Core §8.1), so that two unrelated sites cannot
join their users by it. Never a WeChat openid or unionid."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

from gateway.clients.registry import ClientView


def pairwise_key(secret_key: str) -> bytes:
    """A key of its own, derived from the gateway's secret key."""
    return hmac.new(secret_key.encode(), b"gateway/oidc-pairwise-sub/v1", hashlib.sha256).digest()


class Subjects:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def sub(self, client: ClientView, account_id: uuid.UUID) -> str:
        if client.first_party:
            return str(account_id)  # the ``sub`` of the gateway's own access tokens
        message = f"{client.client_id}\x00{account_id}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
