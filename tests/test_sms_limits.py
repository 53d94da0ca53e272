"""The limits against SMS pumping over time and across processes: hours and days on the
sandbox clock (sandbox mode), code expiry on it too, and two gateway processes spending one
set of limits through Redis."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import processes
from tests.support.harness import PG_URL, REDIS_URL, skip_or_fail
from tests.support.sandbox import Sandbox, sandbox
from tests.support.sms import LOGIN, REQUEST, last_code, request_code, sms_login

HOUR, DAY = 3600, 86400


async def advance(gw: Sandbox, seconds: float) -> float:
    answer = await gw.client.post("/sandbox/wechat/sandbox/clock", json={"advance": seconds})
    assert answer.status_code == 200, answer.text
    now: float = answer.json()["now"]
    return now


async def start_of_day(gw: Sandbox) -> None:
    """Fixed windows: start on a fresh day so that no hour or day ends mid-test."""
    now = await advance(gw, 0)
    await advance(gw, DAY - now % DAY + 1)


async def five_in_an_hour(gw: Sandbox, phone: str) -> None:
    for _ in range(5):
        sent = await request_code(gw, phone)
        assert sent["__typename"] == "RequestSmsCodeSuccess", sent
        await advance(gw, 61)


async def test_five_an_hour_and_ten_a_day_on_the_sandbox_clock(workdir: Path) -> None:
    async with sandbox() as gw:
        await start_of_day(gw)
        await five_in_an_hour(gw, "13800138000")
        hourly = await request_code(gw, "13800138000")
        assert hourly["code"] == "RATE_LIMITED", hourly
        assert 60 < hourly["retryAfterSeconds"] <= HOUR
        await advance(gw, HOUR)
        await five_in_an_hour(gw, "13800138000")
        await advance(gw, HOUR)
        daily = await request_code(gw, "13800138000")
        assert daily["code"] == "RATE_LIMITED", daily
        assert HOUR < daily["retryAfterSeconds"] <= DAY
        await advance(gw, DAY)
        again = await request_code(gw, "13800138000")
        assert again["__typename"] == "RequestSmsCodeSuccess", again


async def test_a_code_expires_after_five_minutes_of_the_sandbox_clock(workdir: Path) -> None:
    async with sandbox() as gw:
        await request_code(gw, "13900139000")
        code = await last_code(gw.client, "13900139000")
        await advance(gw, 301)
        expired = await sms_login(gw, "13900139000", code)
        assert expired["code"] == "INVALID_CODE", expired


async def test_the_sandbox_shows_the_messages_of_a_number(workdir: Path) -> None:
    async with sandbox() as gw:
        await request_code(gw, "+86 137 0013 7000")
        answer = await gw.client.get("/sandbox/sms", params={"phone": "13700137000"})
        (message,) = answer.json()["messages"]
        assert message["phone"] == "+8613700137000"
        assert message["code"] in message["text"]
        assert (await gw.client.get("/sandbox/sms", params={"phone": "x"})).status_code == 400


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[processes.Cluster]:
    if not (PG_URL and REDIS_URL):
        skip_or_fail("PostgreSQL and Redis")
    assert PG_URL
    assert REDIS_URL
    with (
        processes.own_database(PG_URL) as url,
        processes.cluster(url, REDIS_URL, tmp_path, '\n[sms]\nprovider = "sandbox"\n') as gws,
    ):
        yield gws


async def _gql(
    client: httpx.AsyncClient, url: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    answer = await client.post(f"{url}/graphql", json={"query": query, "variables": variables})
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


async def test_two_processes_share_the_limits_through_redis(
    two_processes: processes.Cluster,
) -> None:
    first, second = two_processes.gateways
    number = f"1360013{secrets.randbelow(10_000):04d}"  # Redis outlives the run: a fresh one
    phone = {"phone": number, "purpose": "LOGIN", "app": "shop-mp"}
    async with httpx.AsyncClient(timeout=30) as client:
        sent = (await _gql(client, first, REQUEST, phone))["requestSmsCode"]
        assert sent["__typename"] == "RequestSmsCodeSuccess", sent
        refused = (await _gql(client, second, REQUEST, phone))["requestSmsCode"]
        assert refused["code"] == "RATE_LIMITED", refused
        assert 0 < refused["retryAfterSeconds"] <= 60
        # the code lives in the database: one process sent it, the other takes it
        messages = await client.get(f"{first}/sandbox/sms", params={"phone": number})
        code = messages.json()["messages"][-1]["code"]
        login = {"phone": number, "code": code, "app": "shop-mp"}
        answer = (await _gql(client, second, LOGIN, login))["loginBySmsCode"]
        assert answer["__typename"] == "LoginSuccess", answer
