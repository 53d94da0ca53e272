"""`gateway keys rotate`: new tokens carry the new key; tokens signed before stay valid until
they expire; the JWKS publishes both keys."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys

from tests.support.harness import MakeConfig, running


def _kid(token: str) -> str:
    header = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


async def test_rotation_keeps_old_tokens_valid(database_url: str, make_config: MakeConfig) -> None:
    config = make_config(database_url)
    async with running(config) as gw:
        old = await gw.login("shop-mp", "alice")
    env = {
        **os.environ,
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_SIGNING_KEYS": str(config.settings.signing_keys),
        "GATEWAY_SECRET_KEY": "x" * 40,
        "GATEWAY_CONFIG": str(config.settings.config),
    }
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", "keys", "rotate"],
        env=env,
        check=True,
        capture_output=True,
    )
    async with running(make_config(database_url)) as gw:  # a restart picks the new key up
        new = await gw.login("shop-mp", "alice")
        assert _kid(new["accessToken"]) != _kid(old["accessToken"])
        kids = {k["kid"] for k in (await gw.client.get("/.well-known/jwks.json")).json()["keys"]}
        assert kids == {_kid(old["accessToken"]), _kid(new["accessToken"])}
        for token in (old["accessToken"], new["accessToken"]):
            viewer = (await gw.gql("{ viewer { id } }", token=token))["data"]["viewer"]
            assert viewer == {"id": old["account"]["id"]}
