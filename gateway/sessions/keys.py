"""Signing keys for access tokens: ES256, published as a JWKS, several at once for rotation.

The newest key signs; every key in the set verifies, so tokens signed before a rotation stay
valid until they expire.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeySet

ALGORITHM = "ES256"


class SigningKeys:
    def __init__(self, keys: list[ECKey]) -> None:
        if not keys:
            raise ValueError("at least one signing key is required")
        self._keys = keys
        self.key_set = KeySet(list(keys))

    @property
    def current(self) -> ECKey:
        return self._keys[-1]

    def public_jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {**k.as_dict(private=False), "use": "sig", "alg": ALGORITHM} for k in self._keys
            ]
        }

    def private_jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=True) for k in self._keys]}

    @classmethod
    def from_jwks(cls, data: dict[str, Any]) -> SigningKeys:
        return cls([ECKey.import_key(entry) for entry in data["keys"]])

    def rotated(self) -> SigningKeys:
        return SigningKeys([*self._keys, new_key()])


def new_key() -> ECKey:
    return ECKey.generate_key("P-256", auto_kid=True)


def load_keys_file(path: Path) -> SigningKeys:
    return SigningKeys.from_jwks(json.loads(path.read_text(encoding="utf-8")))


def write_keys_file(path: Path, keys: SigningKeys) -> None:
    """Write atomically with owner-only permissions: the file holds private keys."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(keys.private_jwks(), fh)
    os.replace(tmp, path)
