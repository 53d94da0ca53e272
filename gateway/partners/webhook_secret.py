"""A partner's webhook signing secret (Standard Webhooks, ``whsec_<base64>``): made once, shown
once, and kept sealed with the gateway's secret key, bound to its partner. Signing needs the
secret itself, so it cannot be kept as a hash like the client secret; a sealed copy moved to
another partner's row does not open."""

from __future__ import annotations

import base64
import secrets

from gateway.store.secretbox import SecretBox

PURPOSE = b"gateway/webhook-secret"
PREFIX = "whsec_"


def new_webhook_secret() -> str:
    """24 random bytes, as the Standard Webhooks libraries expect them."""
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


class WebhookSecrets:
    """Seals and opens webhook secrets under a key derived for this purpose only."""

    def __init__(self, secret_key: str) -> None:
        self._box = SecretBox(secret_key, PURPOSE)

    def seal(self, client_id: str, secret: str) -> str:
        return self._box.seal(secret, client_id)

    def open(self, client_id: str, sealed: str) -> str:
        """The secret; ``SealError`` when it was sealed for another partner or key."""
        return self._box.open(sealed, client_id)
