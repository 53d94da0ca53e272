"""Trusted documents over HTTP: the SDK's operations known by hash (Apollo's
persistedQuery), an app's own through a manifest, and ``[api] trusted_documents_only``
refusing every other document from frontends while partners are not bound by it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.api.trusted import sdk_documents
from gateway.app import create_app
from gateway.config import ConfigError, GatewayConfig, Settings, load_config
from tests.support.harness import APPS_TOML, REQUIRE_SERVICES, Harness, MakeConfig
from tests.support.partners import partner_token
from tests.support.trusted import (  # noqa: F401  (the fixture make_gw)
    Make,
    persisted,
    sha,
    trusted_gateways,
    write_manifest,
)

ROOT = Path(__file__).resolve().parent.parent
APP_QUERY = "query ShopApps { apps { key } }"
ANY_QUERY = "{ apps { key name } }"


def sdk_login() -> str:
    (login,) = [d for d in sdk_documents().values() if "loginByCode(" in d]
    return login


async def post(gw: Harness, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await gw.client.post("/graphql", json=body, headers=headers)


async def login_by_hash(gw: Harness, user: str) -> httpx.Response:
    code = await gw.mint("shop-mp", user)
    variables = {"input": {"app": "shop-mp", "code": code, "client": {"platform": "ios"}}}
    return await post(gw, persisted(sha(sdk_login()), variables=variables))


def test_the_sdk_list_is_generated_from_the_sdk_source() -> None:
    if shutil.which("node") is None:
        if REQUIRE_SERVICES or os.environ.get("CI"):
            pytest.fail("node is needed to read clients/miniprogram/lib/documents.js")
        pytest.skip("node not installed: the SDK's documents cannot be read")
    check = [sys.executable, str(ROOT / "scripts" / "sdk_documents.py"), "--check"]
    done = subprocess.run(check, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert any("loginByCode(" in d for d in sdk_documents().values())


async def test_an_sdk_operation_runs_by_its_hash_alone(make_gw: Make) -> None:
    gw = await make_gw()
    answer = await login_by_hash(gw, "ann")
    assert answer.status_code == 200
    assert answer.json()["data"]["loginByCode"]["__typename"] == "LoginSuccess"

    unknown = await post(gw, persisted("0" * 64))
    assert unknown.status_code == 200
    assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    wrong = await post(gw, persisted(sha(sdk_login()), query=ANY_QUERY))
    assert wrong.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    odd = await post(gw, {"query": ANY_QUERY, "extensions": ["not", "an", "object"]})
    assert odd.status_code == 400  # a malformed request, as strawberry answers it (not a 500)
    # not trusted-only: any document still runs
    assert (await post(gw, {"query": ANY_QUERY})).json()["data"]["apps"]


async def test_trusted_only_refuses_other_documents_from_frontends(
    make_gw: Make, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path, APP_QUERY)
    gw = await make_gw(
        f'\n[api]\ntrusted_documents_only = true\ntrusted_documents_file = "{manifest.name}"\n'
    )
    login = await login_by_hash(gw, "bo")
    token = login.json()["data"]["loginByCode"]["accessToken"]

    for caller in (None, token):
        refused = await post(gw, {"query": ANY_QUERY}, caller)
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNTRUSTED_DOCUMENT"
        assert "data" not in refused.json()
        # the app's own document, listed in its manifest: by text and by hash
        by_text = await post(gw, {"query": APP_QUERY}, caller)
        assert by_text.json()["data"]["apps"], by_text.text
        by_hash = await post(gw, persisted(sha(APP_QUERY)), caller)
        assert by_hash.json()["data"]["apps"]
        # off the JSON POST path (a GET), a frontend gets nothing either
        got = await gw.client.get(
            "/graphql",
            params={"query": APP_QUERY},
            headers={"authorization": f"Bearer {caller}"} if caller else {},
        )
        assert got.status_code == 400
        assert got.json()["errors"][0]["extensions"]["code"] == "UNTRUSTED_DOCUMENT"

    # the SDK's text, as the SDK sends it, is trusted too
    code = await gw.mint("shop-mp", "cy")
    variables = {"input": {"app": "shop-mp", "code": code, "client": {"platform": "ios"}}}
    sent = await post(gw, {"query": sdk_login(), "variables": variables})
    assert sent.json()["data"]["loginByCode"]["__typename"] == "LoginSuccess"
    # a partner is not a frontend
    partner = await post(
        gw, {"query": "{ partner { __typename } }"}, await partner_token(gw, "crm")
    )
    assert partner.json()["data"]["partner"]["__typename"] == "PartnerQuery"


def test_a_manifest_whose_hash_is_not_its_documents_stops_start_up(
    tmp_path: Path, make_config: MakeConfig
) -> None:
    path = tmp_path / "documents.json"
    path.write_text(json.dumps({"0" * 64: APP_QUERY}), encoding="utf-8")
    toml = tmp_path / "bad.toml"
    toml.write_text(APPS_TOML + f'\n[api]\ntrusted_documents_file = "{path}"\n', encoding="utf-8")
    base = make_config("sqlite+aiosqlite:///unused.db")
    config: GatewayConfig = load_config(Settings(**{**base.settings.model_dump(), "config": toml}))
    with pytest.raises(ConfigError, match="trusted_documents_file"):
        create_app(config)
