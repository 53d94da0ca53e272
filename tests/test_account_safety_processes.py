"""Issue 30's defects, reproduced against real `gateway serve` processes: what an attacker (or a
crowd) does over the wire, once on SQLite (one process: its documented topology) and once on
PostgreSQL (two processes sharing Redis, requests alternating between them). Each test fails
against the gateway before issue 30's fixes (checked on 0c675fd; the NUL only on PostgreSQL,
which refuses one in text); the rules themselves are tested in process elsewhere
(``test_reauthentication``, ``test_merge_disabled``, ``test_rights``, ``test_throttle_nat``,
``test_hostile_forms``, ``test_sessions``, ``test_cli``). Defect 2, the erasure racing logins,
has its own: ``test_deletion_races_login``.

The processes run with ``reauthentication_seconds = 0``, so every access token is older than the
re-authentication window (a stolen 15-minute token), and ``deletion_grace_days = 0``, so an
erasure is immediate and irreversible. The client sends from an address of its own in
127.0.0.0/8, so throttle and rate-limit counts shared through Redis start empty on every run
and belong to no other test. The documents are the ones the defects were found with (no argument
added by the fixes), so the file runs unchanged against the gateway before them; only
``personalData``'s answer became a union with its fix.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from gateway.store import migrate
from tests.support import processes
from tests.support.accounts import AUTHORIZATION_URL, LOGIN_WITH_STATE, REDIRECT, account_uuid
from tests.support.harness import LOGIN, PG_URL, REDIS_URL, skip_or_fail
from tests.support.passwords import GOOD_PASSWORD, PASSWORD_LOGIN, REGISTER
from tests.support.processes import Cluster

SETTINGS = """
[accounts]
reauthentication_seconds = 0
deletion_grace_days = 0

[throttle]
registrations_per_hour = 100
"""
APPIDS = {
    "shop-mp": "wxtestshop000001",
    "club-mp": "wxtestclub000002",
    "news-oa": "wxtestnews000003",
    "solo-mp": "wxtestsolo000004",
}
ERROR = "... on Error { code }"
BIND = f"""mutation($username: String!, $password: String!) {{
  bindCredential(input: {{username: $username, password: $password}}) {{ __typename {ERROR} }} }}"""
LINK = f"""mutation($app: String!, $code: String!) {{
  linkWechat(input: {{app: $app, code: $code}}) {{ __typename {ERROR} }} }}"""
UNLINK = f"""mutation($id: ID!) {{ unlinkIdentity(id: $id) {{ __typename {ERROR} }} }}"""
DELETE = f"""mutation($input: DeleteAccountInput) {{
  deleteAccount(input: $input) {{ __typename {ERROR} }} }}"""
IDENTITIES = "{ viewer { identities { id kind } } }"
EXPORT = f"personalData {{ __typename ... on PersonalData {{ document }} {ERROR} }}"
REFRESH = f"""mutation($t: String!) {{ refreshToken(refreshToken: $t) {{ __typename
  ... on RefreshSuccess {{ accessToken refreshToken }} {ERROR} }} }}"""
SESSIONS = "{ viewer { sessions { id current } } }"
CLIENT = {"platform": "ios"}
REAUTHENTICATE = {
    "__typename": "ReauthenticationRequiredError",
    "code": "REAUTHENTICATION_REQUIRED",
}
WRONG_PROOF = {"__typename": "InvalidCredentialsError", "code": "INVALID_CREDENTIALS"}
DISABLED = ("AccountDisabledError", "ACCOUNT_DISABLED")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gateways(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Started once per database for the module: the tests use accounts of their own."""
    tmp = tmp_path_factory.mktemp(f"safety-{request.param}")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url, redis_url, count = f"sqlite+aiosqlite:///{tmp / 'gateway.db'}", None, 1
            migrate.upgrade(url)
        else:
            if not (PG_URL and REDIS_URL):
                skip_or_fail("PostgreSQL and Redis")
            assert PG_URL
            assert REDIS_URL
            url = stack.enter_context(processes.own_database(PG_URL))
            redis_url, count = REDIS_URL, 2
        yield stack.enter_context(processes.cluster(url, redis_url, tmp, SETTINGS, count))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """Every request from one address of this test's own (the processes see the TCP peer):
    Linux answers on all of 127.0.0.0/8, so any of it can be the client's source address."""
    octets = (secrets.randbelow(250) + 2, secrets.randbelow(256), secrets.randbelow(254) + 1)
    address = "127." + ".".join(map(str, octets))
    transport = httpx.AsyncHTTPTransport(local_address=address)
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(transport=transport, timeout=30, limits=limits) as c:
        yield c


def person() -> str:
    return f"p{secrets.token_hex(5)}"


async def answer(
    c: Cluster,
    http: httpx.AsyncClient,
    index: int,
    document: str,
    token: str | None = None,
    /,
    **variables: Any,
) -> Any:
    """The one field's answer, through process ``index`` (modulo the processes running)."""
    (result,) = (await c.gql(http, index, document, variables, token))["data"].values()
    return result


async def wechat_login(
    c: Cluster, client: httpx.AsyncClient, index: int, app: str, user: str
) -> Any:
    code = await c.mint(client, APPIDS[app], user)
    return await answer(c, client, index, LOGIN, app=app, code=code, client=CLIENT)


async def oa_login(c: Cluster, client: httpx.AsyncClient, index: int, user: str, scope: str) -> Any:
    """The official account's redirect page: an authorization state, consent, loginByCode."""
    url = await answer(
        c, client, index, AUTHORIZATION_URL, app="news-oa", redirect=REDIRECT, scope=scope
    )
    code = await c.mint(client, APPIDS["news-oa"], user, scope=scope)
    return await answer(
        c, client, index, LOGIN_WITH_STATE, app="news-oa", code=code, state=url["state"]
    )


async def identity_ids(c: Cluster, client: httpx.AsyncClient, token: str) -> dict[str, str]:
    viewer = await answer(c, client, 1, IDENTITIES, token)
    return {i["kind"]: i["id"] for i in viewer["identities"]}


async def operator(c: Cluster, *argv: bytes) -> subprocess.CompletedProcess[bytes]:
    """A `gateway` operator command, as its own process, on the processes' configuration."""
    command = [sys.executable.encode(), b"-m", b"gateway", *argv]
    env = {**c.env, "LC_ALL": "C.UTF-8"}
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, timeout=60, check=False
    )


# -- 1: deletion's re-authentication walked around with a factor added without one -------------


async def test_1_a_stale_token_cannot_add_a_factor_and_erase_the_account_with_it(
    gateways: Cluster, client: httpx.AsyncClient
) -> None:
    """The holder of a stale token sets a password of their choosing (or links their own
    WeChat) through one process, then erases the account with it through the other: both
    steps refused, and the owner's own way in cannot be unlinked either."""
    c, victim = gateways, person()
    token = (await wechat_login(c, client, 0, "shop-mp", victim))["accessToken"]

    planted = await answer(c, client, 0, BIND, token, username=victim, password=GOOD_PASSWORD)
    assert planted == REAUTHENTICATE
    erased = await answer(c, client, 1, DELETE, token, input={"password": GOOD_PASSWORD})
    assert erased == WRONG_PROOF

    mallory = person()
    code = await c.mint(client, APPIDS["solo-mp"], mallory)
    linked = await answer(c, client, 0, LINK, token, app="solo-mp", code=code)
    assert linked == REAUTHENTICATE
    proof = {"app": "solo-mp", "code": await c.mint(client, APPIDS["solo-mp"], mallory)}
    erased = await answer(c, client, 1, DELETE, token, input=proof)
    assert erased == WRONG_PROOF

    ids = await identity_ids(c, client, token)
    assert sorted(ids) == ["WECHAT_OPENID", "WECHAT_UNIONID"]  # nothing of Mallory's
    taken = await answer(c, client, 0, UNLINK, token, id=ids["WECHAT_OPENID"])
    assert taken == REAUTHENTICATE
    again = await wechat_login(c, client, 1, "shop-mp", victim)
    assert again["isNewAccount"] is False, again  # the account and the owner's way in remain


# -- 3: a merge undoing an operator's disable --------------------------------------------------


async def test_3_a_merge_never_brings_back_an_account_an_operator_disabled(
    gateways: Cluster, client: httpx.AsyncClient
) -> None:
    """An older account reached through the official account's ``snsapi_base`` (openid only),
    a newer one through ``shop-mp`` (with the unionid) that an operator disables for fraud
    (``gateway accounts disable``, its own process): the ``snsapi_userinfo`` login that proves
    them one person is refused, every door of the unionid stays shut, and ``gateway accounts
    show`` says why."""
    c, fraud = gateways, person()
    older = await oa_login(c, client, 0, fraud, "snsapi_base")
    newer = await wechat_login(c, client, 1, "shop-mp", fraud)
    assert (older["isNewAccount"], newer["isNewAccount"]) == (True, True), (older, newer)
    disabled = str(account_uuid(newer["account"]["id"])).encode()
    done = await operator(c, b"accounts", b"disable", disabled, b"--reason", b"fraud")
    assert done.returncode == 0, done.stderr

    merging = await oa_login(c, client, 1, fraud, "snsapi_userinfo")
    assert (merging["__typename"], merging.get("code")) == DISABLED
    for index, app in enumerate(("shop-mp", "club-mp")):
        shut = await wechat_login(c, client, index, app, fraud)
        assert (shut["__typename"], shut.get("code")) == DISABLED
    shown = await operator(c, b"accounts", b"show", disabled)
    assert shown.returncode == 0, shown.stderr
    assert b"merge_refused" in shown.stdout, shown.stdout


# -- 4: personalData computed once per alias ---------------------------------------------------


async def test_4_one_request_gets_one_personal_data_export(
    gateways: Cluster, client: httpx.AsyncClient
) -> None:
    """Aliases asked for 15 exports in one request: one is served, the others refused typed;
    and the next export, through the other process, waits for the interval."""
    c = gateways
    token = (await wechat_login(c, client, 0, "shop-mp", person()))["accessToken"]
    aliases = " ".join(f"a{n}: viewer {{ {EXPORT} }}" for n in range(15))
    body = (await c.gql(client, 0, f"{{ {aliases} }}", token=token))["data"]
    answers = [body[f"a{n}"]["personalData"] for n in range(15)]
    assert [a["__typename"] for a in answers].count("PersonalData") == 1, answers
    assert {a.get("code") for a in answers} == {None, "TOO_EXPENSIVE"}, answers
    again = await answer(c, client, 1, f"{{ viewer {{ {EXPORT} }} }}", token)
    assert again["personalData"]["code"] == "RATE_LIMITED", again


# -- 5: honest people behind one address throttled ---------------------------------------------


async def test_5_thirty_people_behind_one_address_register_and_log_in_in_one_burst(
    gateways: Cluster, client: httpx.AsyncClient
) -> None:
    """An office's NAT: 30 people register, then log in with their right passwords, each in one
    burst from one address, spread over the processes (which share the counts through Redis).
    In-flight attempts count against no one: not one ``THROTTLED``."""
    c, names = gateways, [person() for _ in range(30)]

    async def attempt(document: str, n: int) -> str:
        variables = {"username": names[n], "password": GOOD_PASSWORD, "app": "shop-mp"}
        result = await answer(c, client, n, document, client=CLIENT, **variables)
        return str(result.get("code", result["__typename"]))

    async def burst(document: str) -> list[str]:
        return list(await asyncio.gather(*(attempt(document, n) for n in range(30))))

    assert await burst(REGISTER) == ["LoginSuccess"] * 30
    assert await burst(PASSWORD_LOGIN) == ["LoginSuccess"] * 30


# -- 6: a NUL in /oauth/token's client_id ------------------------------------------------------


async def test_6_a_nul_in_a_client_id_is_an_unknown_client_not_a_server_error(
    gateways: Cluster, client: httpx.AsyncClient
) -> None:
    """PostgreSQL refuses a NUL in text: in the form or in Basic, the answer is RFC 6749's
    ``invalid_client``, never a 500, and the process stays ready."""
    form = {"content-type": "application/x-www-form-urlencoded"}
    basic = "Basic " + base64.b64encode(b"crm\x00:secret").decode()
    for url in gateways.gateways:
        refused = [
            await client.post(
                f"{url}/oauth/token",
                content=b"grant_type=client_credentials&client_id=crm%00&client_secret=secret",
                headers=form,
            ),
            await client.post(
                f"{url}/oauth/token",
                content=b"grant_type=client_credentials",
                headers={**form, "authorization": basic},
            ),
        ]
        for response in refused:
            assert response.status_code == 401, response.text
            assert response.json()["error"] == "invalid_client", response.text
        assert (await client.get(f"{url}/readyz")).status_code == 200


# -- 7: token chains minted in the grace window; the CLI's tracebacks --------------------------


async def test_7_a_reuse_in_the_grace_window_answers_the_same_successor(
    gateways: Cluster, client: httpx.AsyncClient
) -> None:
    """The SDK's racing refreshes, and an attacker replaying a just-spent token: every reuse,
    through either process, at once, answers the successor the first refresh got, for the same
    session. No new chain: the account still has one session."""
    c = gateways
    first = await wechat_login(c, client, 0, "shop-mp", person())
    spent = first["refreshToken"]
    successor = await answer(c, client, 0, REFRESH, t=spent)
    assert successor["__typename"] == "RefreshSuccess", successor
    reuses = await asyncio.gather(*(answer(c, client, n, REFRESH, t=spent) for n in range(12)))
    assert {r.get("refreshToken") for r in reuses} == {successor["refreshToken"]}, reuses
    for reuse in reuses[:2]:  # one through each process
        sessions = (await answer(c, client, 1, SESSIONS, reuse["accessToken"]))["sessions"]
        assert [s["current"] for s in sessions] == [True], sessions


async def test_7_operator_commands_answer_bad_arguments_with_exit_2(gateways: Cluster) -> None:
    """With the processes' configuration and database: an undecodable argument and a prune
    beyond any date are one line on stderr and exit status 2, never a traceback."""
    for argv in (
        [b"accounts", b"find", b"--username", b"\xff"],
        [b"audit", b"prune", b"--older-than", b"999999999"],
    ):
        result = await operator(gateways, *argv)
        stderr = result.stderr.decode("utf-8", "replace")
        assert result.returncode == 2, stderr
        assert stderr.startswith("gateway: error: "), stderr
        assert len(stderr.splitlines()) == 1, stderr
