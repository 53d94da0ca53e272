"""Where the gateway's own secrets come from.

Production sets ``GATEWAY_SECRET_KEY`` and ``GATEWAY_SIGNING_KEYS`` (a JWKS file shared by all
replicas). The embedded default generates both on first start and keeps them beside the SQLite
file, owner-readable only, so a newcomer's first command works and restarts keep logins valid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gateway.config import ConfigError, GatewayConfig
from gateway.sessions.keys import SigningKeys, load_keys_file, new_key, write_keys_file
from gateway.store.secretbox import generate_secret_key

SECRET_FILE = "gateway-secret.key"
SIGNING_FILE = "gateway-signing-keys.json"


@dataclass(frozen=True)
class Secrets:
    secret_key: str
    signing_keys: SigningKeys
    signing_keys_path: Path


def signing_keys_path(config: GatewayConfig) -> Path:
    if config.settings.signing_keys:
        return config.settings.signing_keys
    if not config.embedded_database:
        raise ConfigError(
            "GATEWAY_SIGNING_KEYS: required with GATEWAY_DATABASE_URL "
            "(a JWKS file shared by every replica; `gateway keys rotate` makes one)"
        )
    return config.data_dir / SIGNING_FILE


def load_secrets(config: GatewayConfig) -> Secrets:
    path = signing_keys_path(config)
    if not path.exists():
        if config.settings.signing_keys:
            raise ConfigError(f"GATEWAY_SIGNING_KEYS: {path} does not exist")
        write_keys_file(path, SigningKeys([new_key()]))
    try:
        keys = load_keys_file(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"GATEWAY_SIGNING_KEYS: {path} is not a JWKS file ({type(exc).__name__})"
        ) from None
    return Secrets(_secret_key(config), keys, path)


def _secret_key(config: GatewayConfig) -> str:
    if config.settings.secret_key:
        value = config.settings.secret_key.get_secret_value()
        if len(value) < 32:
            raise ConfigError("GATEWAY_SECRET_KEY: must be at least 32 characters")
        return value
    if not config.embedded_database:
        raise ConfigError(
            "GATEWAY_SECRET_KEY: required with GATEWAY_DATABASE_URL "
            "(it encrypts WeChat session keys at rest)"
        )
    path = config.data_dir / SECRET_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(generate_secret_key())
    return path.read_text(encoding="utf-8").strip()
