"""Real processes: two `gateway serve` on one PostgreSQL and one Redis, and the WeChat emulator
as its own `gateway sandbox` process. The races of DESIGN §2 must end in one account, with one
WeChat call per distinct code, whichever process each request reaches. (What one process
writes, the other's token cache hears: ``test_revocation_across_processes``.)"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import processes
from tests.support.harness import LOGIN, PG_URL, skip_or_fail
from tests.support.processes import Cluster


@pytest.fixture
def own_database() -> Iterator[str]:
    """A database of its own, so nothing else truncates tables under these processes."""
    if not PG_URL:
        skip_or_fail("PostgreSQL")
    assert PG_URL
    with processes.own_database(PG_URL) as url:
        yield url


SETTINGS = "\n[throttle]\nfailure_factor = 3\n"


@pytest.fixture
def cluster(own_database: str, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    with processes.cluster(own_database, redis_url, tmp_path, SETTINGS) as started:
        yield started


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
