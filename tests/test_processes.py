"""Real processes: two `gateway serve` on one PostgreSQL and one Redis, and the WeChat emulator
as its own `gateway sandbox` process. The races of DESIGN §2 must end in one account, with one
WeChat call per distinct code, whichever process each request reaches."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from gateway.store import migrate
from tests.support.accounts import account_uuid
from tests.support.harness import APPS_TOML, LOGIN, PG_URL, metric, skip_or_fail
from tests.support.processes import free_port, wait_ready


@dataclass
class Cluster:
    gateways: list[str]
    wechat: str
    env: dict[str, str] = field(default_factory=dict)

    async def gql(
        self, client: httpx.AsyncClient, index: int, query: str, variables: dict[str, Any]
    ) -> dict[str, Any]:
        url = self.gateways[index % len(self.gateways)]
        response = await client.post(
            f"{url}/graphql", json={"query": query, "variables": variables}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        return body

    async def mint(self, client: httpx.AsyncClient, appid: str, user: str, **extra: Any) -> str:
        answer = await client.post(
            f"{self.wechat}/sandbox/codes", json={"appid": appid, "user": user, **extra}
        )
        return str(answer.json()["code"])

    async def calls(self, client: httpx.AsyncClient, path: str) -> int:
        stats = (await client.get(f"{self.wechat}/sandbox/stats")).json()
        return int(stats["calls"].get(path, 0))


@pytest.fixture
def own_database() -> Iterator[str]:
    """A database of its own, so nothing else truncates tables under these processes."""
    if not PG_URL:
        skip_or_fail("PostgreSQL")
    assert PG_URL
    url = make_url(PG_URL)
    name = f"gateway_processes_{secrets.token_hex(4)}"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
    own = url.set(database=name).render_as_string(False)
    migrate.upgrade(own)
    yield own
    subprocess.run(["psql", admin, "-qc", f"DROP DATABASE {name} WITH (FORCE)"], check=True)


@pytest.fixture
def cluster(own_database: str, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with _cluster(own_database, redis_url, tmp_path) as started:
        yield started


@pytest.fixture
def cluster_without_redis(own_database: str, tmp_path: Path) -> Iterator[Cluster]:
    """Two processes whose only shared service is PostgreSQL (LISTEN/NOTIFY)."""
    with _cluster(own_database, None, tmp_path) as started:
        yield started


@contextmanager
def _cluster(own_database: str, redis_url: str | None, tmp_path: Path) -> Iterator[Cluster]:
    config = tmp_path / "gateway.toml"
    tables = "\n[throttle]\nfailure_factor = 3\n\n[accounts]\ndeletion_grace_days = 0\n"
    config.write_text(APPS_TOML + tables, encoding="utf-8")
    wechat_port, ports = free_port(), [free_port(), free_port()]
    base = {k: v for k, v in os.environ.items() if k != "GATEWAY_REDIS_URL"}
    env = {
        **base,
        "TEST_CLUB_SECRET": "club-secret-0123456789",
        "GATEWAY_CONFIG": str(config),
        "GATEWAY_DATABASE_URL": own_database,
        **({"GATEWAY_REDIS_URL": redis_url} if redis_url else {}),
        "GATEWAY_SECRET_KEY": "test-secret-key-0123456789-abcdefghijkl",
        "GATEWAY_SIGNING_KEYS": str(tmp_path / "keys.json"),
        "GATEWAY_WECHAT_API_BASE": f"http://127.0.0.1:{wechat_port}",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    gateway = [sys.executable, "-m", "gateway"]
    subprocess.run([*gateway, "keys", "rotate"], env=env, check=True, capture_output=True)
    procs = [subprocess.Popen([*gateway, "sandbox", "--port", str(wechat_port)], env=env)]
    try:
        wait_ready(f"http://127.0.0.1:{wechat_port}/sandbox/stats", procs[0], "emulator")
        for port in ports:
            procs.append(subprocess.Popen([*gateway, "serve", "--port", str(port)], env=env))
        for port, proc in zip(ports, procs[1:], strict=True):
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc, "gateway")
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        yield Cluster(urls, f"http://127.0.0.1:{wechat_port}", env)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(timeout=30, limits=limits) as c:
        yield c


async def test_200_concurrent_logins_of_one_new_person_make_one_account(
    cluster: Cluster,
    client: httpx.AsyncClient,
) -> None:
    codes = [
        await cluster.mint(client, appid, "crowd")
        for appid in ("wxtestshop000001", "wxtestclub000002")
        for _ in range(10)
    ]
    apps = ["shop-mp"] * 10 + ["club-mp"] * 10
    requests = [(app, code) for app, code in zip(apps, codes, strict=True) for _ in range(10)]
    bodies = await asyncio.gather(
        *(
            cluster.gql(client, i, LOGIN, {"app": app, "code": code, "client": {"platform": "ios"}})
            for i, (app, code) in enumerate(requests)
        )
    )
    results = [b["data"]["loginByCode"] for b in bodies]
    assert len(results) == 200
    assert {r["__typename"] for r in results} == {"LoginSuccess"}, results[:3]
    assert len({r["account"]["id"] for r in results}) == 1
    assert await cluster.calls(client, "/sns/jscode2session") == len(codes)


OA_LOGIN = """
mutation($app: String!, $code: String!, $state: String, $client: ClientInput!) {
  loginByCode(input: {app: $app, code: $code, state: $state, client: $client}) {
    __typename
    ... on LoginSuccess { account { id identities { kind } } }
    ... on Error { code message }
  }
}
"""
AUTHORIZE = """query($redirect: String!) {
  authorizationUrl(app: "news-oa", redirectUri: $redirect, scope: "snsapi_userinfo") {
    ... on AuthorizationUrl { state }
  }
}"""


async def test_concurrent_merges_through_both_processes_converge(
    cluster: Cluster,
    client: httpx.AsyncClient,
) -> None:
    # account A: the official account without unionid; account B: a mini-program with one
    state = (await cluster.gql(client, 0, AUTHORIZE, {"redirect": "https://example.com/cb"}))[
        "data"
    ]["authorizationUrl"]["state"]
    base = await cluster.mint(client, "wxtestnews000003", "merger", scope="snsapi_base")
    first = await cluster.gql(
        client,
        0,
        OA_LOGIN,
        {"app": "news-oa", "code": base, "state": state, "client": {"platform": "web"}},
    )
    mini_code = await cluster.mint(client, "wxtestshop000001", "merger")
    second = await cluster.gql(
        client, 1, LOGIN, {"app": "shop-mp", "code": mini_code, "client": {"platform": "ios"}}
    )
    assert first["data"]["loginByCode"]["__typename"] == "LoginSuccess", first
    a = first["data"]["loginByCode"]["account"]["id"]
    b = second["data"]["loginByCode"]["account"]["id"]
    assert a != b
    # now the official account with snsapi_userinfo: openid + unionid prove A and B are one
    codes = [
        await cluster.mint(client, "wxtestnews000003", "merger", scope="snsapi_userinfo")
        for _ in range(12)
    ]
    bodies = await asyncio.gather(
        *(
            cluster.gql(
                client,
                i,
                OA_LOGIN,
                {"app": "news-oa", "code": code, "state": state, "client": {"platform": "web"}},
            )
            for i, code in enumerate(codes)
        )
    )
    results = [b["data"]["loginByCode"] for b in bodies]
    assert {r["__typename"] for r in results} == {"LoginSuccess"}, results[:3]
    survivors = {r["account"]["id"] for r in results}
    assert survivors == {a}  # the older account survives
    kinds = sorted(i["kind"] for i in results[0]["account"]["identities"])
    assert kinds == ["WECHAT_OPENID", "WECHAT_OPENID", "WECHAT_UNIONID"]


PASSWORD_LOGIN = """mutation($u: String!, $p: String!) {
  loginWithPassword(input: {username: $u, password: $p, app: "shop-mp",
                            client: {platform: "web"}}) {
    __typename ... on Error { code }
  }
}"""
REGISTER = """mutation($u: String!, $p: String!) {
  registerWithPassword(input: {username: $u, password: $p, app: "shop-mp",
                               client: {platform: "web"}}) { __typename }
}"""


async def test_throttling_counts_attempts_across_processes(
    cluster: Cluster,
    client: httpx.AsyncClient,
) -> None:
    password = "correct horse battery staple"
    registered = await cluster.gql(client, 0, REGISTER, {"u": "throttled", "p": password})
    assert registered["data"]["registerWithPassword"]["__typename"] == "LoginSuccess"
    answers = []
    for i in itertools.islice(itertools.cycle([0, 1]), 3):
        body = await cluster.gql(client, i, PASSWORD_LOGIN, {"u": "throttled", "p": "wrong-pw!"})
        answers.append(body["data"]["loginWithPassword"]["code"])
    assert answers == ["INVALID_CREDENTIALS"] * 3
    for i in (1, 0):  # even the right password waits now, on either process
        body = await cluster.gql(client, i, PASSWORD_LOGIN, {"u": "throttled", "p": password})
        assert body["data"]["loginWithPassword"]["code"] == "THROTTLED"


DELETE_ACCOUNT = """mutation { deleteAccount(input: {client: {platform: "ios"}}) { __typename
  ... on DeleteAccountSuccess { deletedAt effectiveAt } ... on Error { code } } }"""
VIEWER = "{ viewer { id } }"


async def test_a_deletion_on_one_process_is_refused_by_the_other_at_once(
    cluster: Cluster, client: httpx.AsyncClient
) -> None:
    """The token is checked against the shared database on every request: the other process
    refuses it on the very next request, and the same person is a new account there."""
    code = await cluster.mint(client, "wxtestshop000001", "leaver")
    variables = {"app": "shop-mp", "code": code, "client": {"platform": "ios"}}
    login = (await cluster.gql(client, 0, LOGIN, variables))["data"]["loginByCode"]
    bearer = {"authorization": f"Bearer {login['accessToken']}"}
    other = f"{cluster.gateways[1]}/graphql"
    before = await client.post(other, json={"query": VIEWER}, headers=bearer)
    assert before.json()["data"]["viewer"]["id"] == login["account"]["id"]

    deleted = await client.post(
        f"{cluster.gateways[0]}/graphql", json={"query": DELETE_ACCOUNT}, headers=bearer
    )
    assert deleted.json()["data"]["deleteAccount"]["__typename"] == "DeleteAccountSuccess"
    after = await client.post(other, json={"query": VIEWER}, headers=bearer)
    assert after.status_code == 401
    assert after.json()["errors"][0]["extensions"]["code"] == "INVALID_TOKEN"

    code = await cluster.mint(client, "wxtestshop000001", "leaver")
    variables["code"] = code
    again = (await cluster.gql(client, 1, LOGIN, variables))["data"]["loginByCode"]
    assert again["isNewAccount"] is True
    assert again["account"]["id"] != login["account"]["id"]


LOGOUT = "mutation { logout { __typename } }"
HEARD_WITHIN = 3.0  # seconds; the cache's max age is 5: only the broadcast explains a refusal


async def _cache_hits(client: httpx.AsyncClient, gateway: str) -> float:
    text = (await client.get(f"{gateway}/metrics")).text
    return metric(text, "gateway_token_checks_total", source="cache")


async def _cached_on(client: httpx.AsyncClient, gateway: str, bearer: dict[str, str]) -> None:
    """Ask until the token check was answered from the process's cache."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        before = await _cache_hits(client, gateway)
        answer = await client.post(f"{gateway}/graphql", json={"query": VIEWER}, headers=bearer)
        assert answer.status_code == 200, answer.text
        if await _cache_hits(client, gateway) > before:
            return
        assert loop.time() < deadline, "the other process never cached the token"
        await asyncio.sleep(0.05)


async def _refused_soon(client: httpx.AsyncClient, gateway: str, bearer: dict[str, str]) -> None:
    """Poll with a deadline (no sleeping for timing): the first refusal ends it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HEARD_WITHIN
    while True:
        answer = await client.post(f"{gateway}/graphql", json={"query": VIEWER}, headers=bearer)
        if answer.status_code == 401:
            assert answer.json()["errors"][0]["extensions"]["code"] == "INVALID_TOKEN"
            return
        assert loop.time() < deadline, "the other process still accepts the token"


async def _revocations_are_heard(cluster: Cluster, client: httpx.AsyncClient) -> None:
    one, other = cluster.gateways
    code = await cluster.mint(client, "wxtestshop000001", "cached")
    variables = {"app": "shop-mp", "code": code, "client": {"platform": "ios"}}
    login = (await cluster.gql(client, 0, LOGIN, variables))["data"]["loginByCode"]
    bearer = {"authorization": f"Bearer {login['accessToken']}"}
    await _cached_on(client, other, bearer)
    out = await client.post(f"{one}/graphql", json={"query": LOGOUT}, headers=bearer)
    assert out.json()["data"]["logout"]["__typename"] == "LogoutSuccess", out.text
    await _refused_soon(client, other, bearer)

    # an operator's command is a third process: disabling revokes on both at once
    variables["code"] = await cluster.mint(client, "wxtestshop000001", "cached")
    again = (await cluster.gql(client, 0, LOGIN, variables))["data"]["loginByCode"]
    bearer = {"authorization": f"Bearer {again['accessToken']}"}
    await _cached_on(client, one, bearer)
    await _cached_on(client, other, bearer)
    account = str(account_uuid(again["account"]["id"]))
    command = [sys.executable, "-m", "gateway", "accounts", "disable", account, "--reason", "t"]
    await asyncio.to_thread(subprocess.run, command, env=cluster.env, check=True)
    await _refused_soon(client, one, bearer)
    await _refused_soon(client, other, bearer)


async def test_a_logout_on_one_process_is_refused_by_the_other_that_cached_it(
    cluster: Cluster, client: httpx.AsyncClient
) -> None:
    """Redis pub/sub: the other process dropped its cached entry when the logout committed."""
    await _revocations_are_heard(cluster, client)


async def test_without_redis_postgresql_notify_carries_the_revocation(
    cluster_without_redis: Cluster, client: httpx.AsyncClient
) -> None:
    await _revocations_are_heard(cluster_without_redis, client)
