"""Trusted documents: a document's hash, a request by hash alone (Apollo's persistedQuery), an
app's manifest, and gateways on configurations of the test's own (the ``make_gw`` fixture of
the modules that import ``trusted_gateways``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings, load_config
from tests.support.harness import APPS_TOML, Harness, MakeConfig, running

PARTNER_TOML = """
[[partners]]
client_id = "crm"
secret = "crm-secret-0123456789abcdef"
apps = ["shop-mp"]
scopes = ["accounts:lookup"]
"""

Make = Callable[..., Any]


def sha(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def persisted(hash_: str, **body: Any) -> dict[str, Any]:
    return {**body, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash_}}}


def write_manifest(tmp_path: Path, *documents: str) -> Path:
    path = tmp_path / "documents.json"
    path.write_text(json.dumps({sha(d): d for d in documents}), encoding="utf-8")
    return path


@pytest.fixture(name="make_gw")
async def trusted_gateways(
    database_url: str, tmp_path: Path, make_config: MakeConfig
) -> AsyncIterator[Make]:
    """``make_gw(api_toml)``: a running gateway with the ``crm`` partner and these lines
    (an ``[api]`` table) in its configuration."""
    base = make_config(database_url)

    async with AsyncExitStack() as stack:

        async def make(api: str = "") -> Harness:
            toml = tmp_path / "gateway.toml"
            toml.write_text(APPS_TOML + PARTNER_TOML + api, encoding="utf-8")
            settings = Settings(**{**base.settings.model_dump(), "config": toml})
            return await stack.enter_async_context(running(load_config(settings)))

        yield make
