"""An erasure racing logins and refreshes of the same person (issue 30, defect 2), through two
real `gateway serve` processes on one PostgreSQL database of their own, erasing at once
(``deletion_grace_days = 0``).

Each trial: a person logs in on ``shop-mp``; then ``deleteAccount`` (a recent login: no proof)
through one process, while ``loginByCode`` on ``club-mp`` and on ``shop-mp`` and a refresh of
the deleted session go through both. Whatever interleaving the database saw, afterwards the
erased account holds no identity and no live session (a login that won the race signed in
before the erasure, whose session the erasure then removed; one that lost it found the person
new), and the person's next login works: an account other than the erased one, whose token is
accepted. The cluster is started once for the module; ``GATEWAY_TEST_ERASURE_TRIALS`` (12)
sets the number of trials.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.support import processes
from tests.support.accounts import account_uuid
from tests.support.harness import LOGIN, PG_URL, skip_or_fail
from tests.support.processes import Cluster

TRIALS = int(os.environ.get("GATEWAY_TEST_ERASURE_TRIALS", "12"))
APPIDS = {"shop-mp": "wxtestshop000001", "club-mp": "wxtestclub000002"}
DELETE_ACCOUNT = """mutation { deleteAccount(input: {client: {platform: "ios"}}) { __typename
  ... on DeleteAccountSuccess { pending } ... on Error { code } } }"""
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) {
  __typename ... on RefreshSuccess { accessToken } ... on Error { code } } }"""
LEFT_ON = """SELECT
  (SELECT count(*) FROM identities WHERE account_id = :id),
  (SELECT count(*) FROM login_sessions
     WHERE account_id = :id AND revoked_at IS NULL AND expires_at > now()),
  (SELECT status FROM accounts WHERE id = :id)"""


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, str]]:
    if not PG_URL:
        skip_or_fail("PostgreSQL")
    assert PG_URL
    tmp = tmp_path_factory.mktemp("erasure-races")
    erase_at_once = "\n[accounts]\ndeletion_grace_days = 0\n"
    with (
        processes.own_database(PG_URL) as url,
        processes.cluster(url, None, tmp, erase_at_once) as started,
    ):
        yield started, url


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


@pytest.fixture
async def engine(pair: tuple[Cluster, str]) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(pair[1])
    yield engine
    await engine.dispose()


async def login(c: Cluster, client: httpx.AsyncClient, index: int, app: str, user: str) -> Any:
    code = await c.mint(client, APPIDS[app], user)
    variables = {"app": app, "code": code, "client": {"platform": "ios"}}
    return (await c.gql(client, index, LOGIN, variables))["data"]["loginByCode"]


async def accepted(c: Cluster, client: httpx.AsyncClient, token: str) -> bool:
    bearer = {"authorization": f"Bearer {token}"}
    answer = await client.post(f"{c.gateways[0]}/graphql", json={"query": "{ viewer { id } }"},
                               headers=bearer)  # fmt: skip
    return answer.status_code == 200


async def left_on(engine: AsyncEngine, account_id: uuid.UUID) -> tuple[int, int, str]:
    async with engine.connect() as conn:
        row = (await conn.execute(text(LEFT_ON), {"id": account_id})).one()
    return int(row[0]), int(row[1]), str(row[2])


async def trial(c: Cluster, client: httpx.AsyncClient, engine: AsyncEngine, user: str) -> None:
    first = await login(c, client, 0, "shop-mp", user)
    assert first["__typename"] == "LoginSuccess", first
    erased = account_uuid(first["account"]["id"])
    deleting = c.gql(client, 0, DELETE_ACCOUNT, token=first["accessToken"])
    racing = [
        login(c, client, 1, "club-mp", user),
        login(c, client, 1, "shop-mp", user),
        login(c, client, 0, "club-mp", user),
        c.gql(client, 1, REFRESH, {"t": first["refreshToken"]}),
    ]
    deleted, *answers = await asyncio.gather(deleting, *racing)
    assert deleted["data"]["deleteAccount"] == {
        "__typename": "DeleteAccountSuccess",
        "pending": False,
    }
    assert await left_on(engine, erased) == (0, 0, "deleted"), (user, answers[:-1])
    for answer in answers[:-1]:  # a login: on the erased account (before), or another (after)
        if answer["__typename"] == "LoginSuccess":
            on_erased = account_uuid(answer["account"]["id"]) == erased
            assert await accepted(c, client, answer["accessToken"]) is not on_erased, answer
    after = await login(c, client, 1, "shop-mp", user)
    assert after["__typename"] == "LoginSuccess", after
    assert account_uuid(after["account"]["id"]) != erased, (user, answers)
    assert await accepted(c, client, after["accessToken"]), after


async def test_an_erasure_racing_logins_and_a_refresh_leaves_nothing_on_the_erased_account(
    pair: tuple[Cluster, str], client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    c = pair[0]
    for n in range(TRIALS):
        await trial(c, client, engine, f"racer-{uuid.uuid4().hex[:8]}-{n}")
