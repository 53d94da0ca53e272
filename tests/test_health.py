"""/healthz, /readyz and the public JWKS."""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.harness import Harness, MakeConfig, running


def _jose_header(token: str) -> dict[str, Any]:
    header = token.split(".")[0]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
    )
    return decoded


async def test_healthz_is_ok(gw: Harness) -> None:
    answer = await gw.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


async def test_readyz_is_ok_on_a_migrated_database(gw: Harness) -> None:
    answer = await gw.client.get("/readyz")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///{tmp}/no/such/dir/gateway.db",
        "postgresql+asyncpg://gateway@127.0.0.1:1/gateway",
    ],
    ids=["sqlite-missing-dir", "postgres-closed-port"],
)
async def test_readyz_is_503_when_the_database_is_unreachable(
    make_config: MakeConfig, tmp_path: Path, url: str
) -> None:
    before = set(threading.enumerate())
    async with running(make_config(url.format(tmp=tmp_path))) as gw:
        ready = await gw.client.get("/readyz")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["status"] == "unavailable"
        assert body["reason"].startswith("database")
        assert "127.0.0.1" not in body["reason"]  # no connection details leak out
        # liveness is not readiness: the process itself is fine
        assert (await gw.client.get("/healthz")).status_code == 200
    # aiosqlite ends a connection that failed to open by queueing a stop whose result its
    # thread hands back to this loop: the loop must outlive that, or the thread raises
    # "Event loop is closed" into whichever test runs next
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=5)


async def test_readyz_is_503_not_at_head_on_an_unmigrated_database(
    make_config: MakeConfig, tmp_path: Path
) -> None:
    async with running(make_config(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")) as gw:
        ready = await gw.client.get("/readyz")
    assert ready.status_code == 503, ready.text
    body = ready.json()
    assert body["status"] == "unavailable"
    assert "not at head" in body["reason"]
    assert "gateway migrate" in body["reason"]


async def test_jwks_publishes_the_public_key_that_signs_access_tokens(gw: Harness) -> None:
    answer = await gw.client.get("/.well-known/jwks.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert "max-age" in answer.headers["cache-control"]
    keys = answer.json()["keys"]
    assert keys
    for key in keys:
        assert "d" not in key, "private key material published"
        assert (key["kty"], key["alg"], key["use"]) == ("EC", "ES256", "sig")

    login = await gw.login("shop-mp", "alice")
    header = _jose_header(login["accessToken"])
    assert header["alg"] == "ES256"
    assert header["kid"] in {key["kid"] for key in keys}
