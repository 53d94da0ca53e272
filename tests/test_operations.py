"""What an operator sees: Prometheus metrics, request ids, access logs without secrets."""

from __future__ import annotations

import json
import logging
import re

import pytest

from gateway.logs import JsonFormatter
from tests.support.harness import LOGIN, Harness, MakeConfig, metric, running


async def test_metrics_count_logins_and_wechat_calls(gw: Harness) -> None:
    before = (await gw.client.get("/metrics")).text
    await gw.login("shop-mp", "alice")
    refused = await gw.mint("shop-mp", "bob", errcode=40226)
    await gw.gql(LOGIN, {"app": "shop-mp", "code": refused, "client": {"platform": "ios"}})
    response = await gw.client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("gateway_logins_total", door="wechat_miniprogram", result="new") == 1
    assert grew("gateway_logins_total", door="wechat_miniprogram", result="RISK_BLOCKED") == 1
    assert grew("gateway_wechat_calls_total", endpoint="/sns/jscode2session", errcode="0") == 1
    assert grew("gateway_wechat_calls_total", endpoint="/sns/jscode2session", errcode="40226") == 1
    assert grew("gateway_wechat_call_seconds_count", endpoint="/sns/jscode2session") == 2
    assert "gateway_http_request_seconds_bucket" in after


async def test_request_id_is_echoed_or_made(gw: Harness) -> None:
    given = await gw.client.get("/healthz", headers={"x-request-id": "abcdef0123456789"})
    assert given.headers["x-request-id"] == "abcdef0123456789"
    made = await gw.client.get("/healthz", headers={"x-request-id": "bad id\nwith newline"})
    assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-request-id"])


async def test_access_log_is_one_json_line_without_secrets(
    gw: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = await gw.mint("shop-mp", "carol")
    response = await gw.client.post(
        "/graphql?code=" + code,
        json={
            "query": LOGIN,
            "variables": {"app": "shop-mp", "code": code, "client": {"platform": "ios"}},
        },
    )
    assert response.status_code == 200
    ids = await gw.wechat_ids("shop-mp", "carol")
    lines = [JsonFormatter().format(r) for r in caplog.records]
    access = [json.loads(line) for line in lines if '"logger": "gateway.access"' in line]
    assert len(access) == 1
    assert access[0]["path"] == "/graphql"
    assert access[0]["status"] == 200
    assert access[0]["request_id"] == response.headers["x-request-id"]
    everything = "\n".join(lines)
    for secret in (code, ids["openid"], ids["unionid"], ids["session_key"]):
        assert secret
        assert secret not in everything


async def test_cors_only_for_listed_origins(database_url: str, make_config: MakeConfig) -> None:
    config = make_config(database_url, cors_origins="https://shop.example.com")
    async with running(config) as gw:
        preflight = {
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        }
        allowed = await gw.client.options(
            "/graphql", headers={"origin": "https://shop.example.com", **preflight}
        )
        refused = await gw.client.options(
            "/graphql", headers={"origin": "https://evil.example.com", **preflight}
        )
        answer = await gw.client.post(
            "/graphql",
            json={"query": "{ sandbox }"},
            headers={"origin": "https://shop.example.com"},
        )
    # the SDK in a browser build (uni-app or Taro H5) reads the server's clock from Date
    exposed = answer.headers["access-control-expose-headers"].lower().split(",")
    assert "date" in [h.strip() for h in exposed]
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert "access-control-allow-origin" not in refused.headers
