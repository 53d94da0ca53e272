"""Partners' webhook signing secrets: drawn here, shown once, stored sealed.

Unlike a client secret (kept as a hash: the gateway only checks it), a webhook secret must be
readable again to sign every delivery, so it is sealed with the gateway's secret key
(AES-256-GCM, ``store.secretbox``) under a purpose of its own and bound to its partner: a sealed
value copied onto another partner's row does not open.
"""

from __future__ import annotations

import base64
import secrets

from gateway.store.secretbox import SecretBox

_PURPOSE = b"gateway/partner-webhook-secret"
PREFIX = "whsec_"


def new_webhook_secret() -> str:
    """``whsec_`` and the base64 of 32 random bytes, as Standard Webhooks' libraries read it."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookSecrets:
    def __init__(self, secret_key: str) -> None:
        self._box = SecretBox(secret_key, _PURPOSE)

    def seal(self, client_id: str, secret: str) -> str:
        return self._box.seal(secret, _bound(client_id))

    def open(self, client_id: str, sealed: str) -> str:
        """The secret; ``SealError`` when it was sealed under another key or partner."""
        return self._box.open(sealed, _bound(client_id))


def _bound(client_id: str) -> str:
    return f"partner-webhook:{client_id}"
