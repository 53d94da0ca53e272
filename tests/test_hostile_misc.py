"""The smaller findings of issue 12 (item 6), over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.types import Message

from tests.support.harness import LOGIN, Configure, Harness, MakeConfig, running

GRAPHQL_RESPONSE = "application/graphql-response+json"


async def test_several_operations_without_an_operation_name_is_a_request_error(
    gw: Harness,
) -> None:
    code = await gw.mint("shop-mp", "ann")
    document = "query Apps { apps { key } }\n" + LOGIN
    variables = {"app": "shop-mp", "code": code, "client": {"platform": "ios"}}
    for accept, status in ((GRAPHQL_RESPONSE, 400), ("application/json", 200)):
        response = await gw.client.post(
            "/graphql",
            json={"query": document, "variables": variables},
            headers={"accept": accept},
        )
        assert response.status_code == status
        assert "operationName" in response.json()["errors"][0]["message"]
        assert response.json().get("data") is None
    assert await gw.upstream_calls("/sns/jscode2session") == 0  # nothing ran
    chosen = await gw.client.post(
        "/graphql", json={"query": document, "variables": variables, "operationName": "Apps"}
    )
    assert chosen.json()["data"]["apps"]


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("application/xml", 406),
        ("text/plain", 406),
        ("application/xml, application/json;q=0.5", 200),
        ("*/*", 200),
        (GRAPHQL_RESPONSE, 200),
    ],
)
async def test_accept_must_allow_json(gw: Harness, accept: str, status: int) -> None:
    response = await gw.client.post(
        "/graphql", json={"query": "{ apps { key } }"}, headers={"accept": accept}
    )
    assert response.status_code == status
    if status == 406:
        assert response.json()["errors"]


@pytest.mark.parametrize("length", [200, 60_000])
async def test_an_unknown_app_key_is_not_echoed_whole(gw: Harness, length: int) -> None:
    variables = {"app": "k" * length, "code": "c", "client": {"platform": "ios"}}
    body = await gw.gql(LOGIN, variables)
    result = body["data"]["loginByCode"]
    assert result["code"] in {"UNKNOWN_APP", "INVALID_INPUT"}
    assert len(result["message"]) < 150


async def test_the_code_result_cache_in_redis_is_sealed(
    database_url: str, configure: Configure, redis_url: str
) -> None:
    async with running(configure(database_url, redis_url=redis_url)) as gw:
        await gw.login("shop-mp", "cache-user")
        ids = await gw.wechat_ids("shop-mp", "cache-user")
        client = Redis.from_url(redis_url)
        try:
            stored = [await client.get(key) async for key in client.scan_iter(match="gw:flight:*")]
        finally:
            await client.aclose()
    values = [v for v in stored if v]
    assert values
    for value in values:
        for secret in (ids["openid"], ids["unionid"], ids["session_key"]):
            assert secret
            assert secret.encode() not in value


async def peer_get(gw: Harness, ip: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=gw.app, client=(ip, 5000))
    async with httpx.AsyncClient(base_url="http://gateway", transport=transport) as http:
        return await http.get("/metrics", headers=headers)


async def test_metrics_are_not_on_the_public_port_by_default(gw: Harness) -> None:
    assert (await peer_get(gw, "203.0.113.5")).status_code == 404
    assert (await peer_get(gw, "127.0.0.1")).status_code == 200


async def test_metrics_behind_a_token(database_url: str, make_config: MakeConfig) -> None:
    token = "scrape-token-0123456789"
    async with running(make_config(database_url, metrics_token=token)) as gw:
        assert (await peer_get(gw, "127.0.0.1")).status_code == 404
        assert (await peer_get(gw, "10.0.0.9", authorization="Bearer nope")).status_code == 404
        allowed = await peer_get(gw, "10.0.0.9", authorization=f"Bearer {token}")
        assert allowed.status_code == 200
        assert "gateway_" in allowed.text


async def test_a_stalled_body_is_dropped_with_408(
    database_url: str, make_config: MakeConfig
) -> None:
    async with running(make_config(database_url, body_timeout_seconds=0.2)) as gw:
        never = asyncio.Event()
        first = True
        sent: list[Message] = []

        async def receive() -> Message:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": b'{"query": "{ ap', "more_body": True}
            await never.wait()  # the client stalls
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": "/graphql", "raw_path": b"/graphql",
            "query_string": b"", "root_path": "", "client": ("192.0.2.1", 1), "state": {},
            "headers": [(b"content-type", b"application/json")], "server": ("gateway", 80),
        }  # fmt: skip
        stalled = asyncio.create_task(gw.app(scope, receive, send))
        # requests beside the stalled one are answered, and not cut by its deadline
        answered = await asyncio.gather(*(gw.gql("{ __typename }") for _ in range(3)))
        assert [a["data"] for a in answered] == [{"__typename": "Query"}] * 3
        await asyncio.wait_for(stalled, timeout=10)
        assert sent[0]["status"] == 408
        assert json.dumps(sent[0]["headers"], default=str)  # a complete response was sent
