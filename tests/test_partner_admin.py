"""Partner administration: the OAuth2 token endpoint's protocol (RFC 6749 §4.4, §5.2) and its
throttle; which bearer tokens open `partner` (and that a partner token opens nothing else);
partners disabled or removed; and the `gateway partners` CLI against a real database that a
running gateway shares.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from gateway.bootstrap import ISSUER
from gateway.config import ThrottleModel
from gateway.partners import scopes
from gateway.partners.tokens import PARTNER_AUDIENCE
from gateway.sessions.keys import ALGORITHM
from gateway.sessions.tokens import ACCESS_TOKEN_TYPE, FRONTEND_AUDIENCE
from gateway.store.models import utcnow
from tests.support.harness import APPS_TOML, Harness, MakeConfig, running
from tests.support.partners import (
    FRAGMENTS,
    LOOKUP_BY_ID,
    Probe,
    World,
    global_id,
    items_of,
    oauth,
    partner_config,
    partner_token,
    partners_toml,
    probe,
    secret_of,
)

ME = "{ partner { __typename ... on PartnerQuery { clientId scopes } ... on Error { code } } }"
LOOKUP = """query($openid: String!) { partner { __typename ... on PartnerQuery {
  accountByOpenid(app: "shop-mp", openid: $openid) { __typename
    ... on AccountLookup { found account { identities { items { kind openid unionid } } } }
    ... on Error { code } } } ... on Error { code } } }"""
RFC_ERROR_KEYS = {"error", "error_description", "error_uri"}


@pytest.fixture
async def gw(database_url: str, tmp_path: Path, make_config: MakeConfig) -> AsyncIterator[Harness]:
    config = partner_config(make_config(database_url), tmp_path, partners_toml(["crm", "pusher"]))
    async with running(config) as harness:
        yield harness


async def me(gw: Harness, token: str) -> dict[str, Any]:
    body = await gw.gql(ME, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["partner"]
    return result


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def assert_no_store(answer: httpx.Response) -> None:
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["pragma"] == "no-cache"


# -- the token endpoint -------------------------------------------------------------------------


async def test_basic_and_form_client_authentication_both_work(gw: Harness) -> None:
    by_basic = await oauth(gw, "crm")
    by_form = await gw.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "crm",
            "client_secret": secret_of("crm"),
            "scope": "accounts:lookup",
        },
    )
    for answer in (by_basic, by_form):
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        assert_no_store(answer)
        body = answer.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
        assert (body["token_type"], body["expires_in"]) == ("Bearer", 300)
    assert by_basic.json()["scope"] == "accounts:lookup identities:identifiers"
    assert by_form.json()["scope"] == "accounts:lookup"
    assert await me(gw, by_basic.json()["access_token"]) == {
        "__typename": "PartnerQuery",
        "clientId": "crm",
        "scopes": ["accounts:lookup", "identities:identifiers"],
    }
    assert (await me(gw, by_form.json()["access_token"]))["scopes"] == ["accounts:lookup"]


def form(**fields: str) -> dict[str, Any]:
    return {"data": {"grant_type": "client_credentials", **fields}}


TOKEN_ERRORS: dict[str, tuple[dict[str, Any], int, str]] = {
    "two authentication methods": (
        {**form(client_secret=secret_of("crm")), "headers": basic("crm", secret_of("crm"))},
        400,
        "invalid_request",
    ),
    "no grant_type": (
        {"data": {"client_id": "crm"}, "headers": basic("crm", secret_of("crm"))},
        400,
        "invalid_request",
    ),
    "JSON body": (
        {"json": {"grant_type": "client_credentials"}, "headers": basic("crm", secret_of("crm"))},
        400,
        "invalid_request",
    ),
    "no body": ({"headers": basic("crm", secret_of("crm"))}, 400, "invalid_request"),
    "unsupported grant": (
        {"data": {"grant_type": "password"}, "headers": basic("crm", secret_of("crm"))},
        400,
        "unsupported_grant_type",
    ),
    "wrong secret in the form": (
        form(client_id="crm", client_secret="wrong-secret"),
        401,
        "invalid_client",
    ),
    "wrong secret by Basic": ({**form(), "headers": basic("crm", "wrong")}, 401, "invalid_client"),
    "unknown client": ({**form(), "headers": basic("ghost", "x" * 20)}, 401, "invalid_client"),
    "no client authentication": (form(), 401, "invalid_client"),
    "Basic without a secret": (
        {**form(), "headers": {"authorization": "Basic " + base64.b64encode(b"crm").decode()}},
        401,
        "invalid_client",
    ),
    "Basic that is not base64": (
        {**form(), "headers": {"authorization": "Basic %%%"}},
        401,
        "invalid_client",
    ),
    "a bearer token instead": (
        {**form(), "headers": {"authorization": "Bearer abc"}},
        401,
        "invalid_client",
    ),
    "a scope beyond the grant": (
        {
            **form(scope="accounts:lookup identities:all-apps"),
            "headers": basic("crm", secret_of("crm")),
        },
        400,
        "invalid_scope",
    ),
}


async def test_token_endpoint_error_bodies(gw: Harness) -> None:
    """RFC 6749 §5.2: a JSON error object, 400 (401 with WWW-Authenticate for a failed client
    authentication), never cached, never a token."""
    for name, (request, status, error) in TOKEN_ERRORS.items():
        answer = await gw.client.post("/oauth/token", **request)
        assert (answer.status_code, answer.json().get("error")) == (status, error), name
        assert set(answer.json()) <= RFC_ERROR_KEYS, name
        assert_no_store(answer)
        if status == 401:
            assert answer.headers["www-authenticate"].startswith("Basic"), name
    assert (await gw.client.get("/oauth/token")).status_code == 405


async def test_repeated_bad_secrets_are_throttled(gw: Harness) -> None:
    free = ThrottleModel().failure_factor
    assert gw.config.throttle.failure_factor == free  # the test config keeps the default
    for _ in range(free):
        assert (await oauth(gw, "crm", "wrong-secret")).status_code == 401
    for secret in ("wrong-secret", secret_of("crm")):  # even the right secret must wait now
        answer = await oauth(gw, "crm", secret)
        assert answer.status_code == 429
        assert answer.json()["error"] == "slow_down"
        assert int(answer.headers["retry-after"]) > 0
        assert_no_store(answer)
        assert "access_token" not in answer.json()
    # the address counts failures only, sized for NAT: a neighbour is not held by them
    assert (await oauth(gw, "pusher")).status_code == 200


# -- token confusion ----------------------------------------------------------------------------


def forge(gw: Harness, *, key: ECKey | None = None, kid: str | None = None, **claims: Any) -> str:
    """A partner-shaped access token; by default exactly what the gateway would issue."""
    real = gw.app.state.services.secrets.signing_keys.current
    now = int(utcnow().timestamp())
    header = {"alg": ALGORITHM, "kid": kid or (key or real).kid, "typ": ACCESS_TOKEN_TYPE}
    header |= claims.pop("header", {})
    payload = {
        "iss": ISSUER,
        "aud": PARTNER_AUDIENCE,
        "sub": "crm",
        "client_id": "crm",
        "scope": f"{scopes.LOOKUP} {scopes.IDENTIFIERS}",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    } | claims
    return jwt.encode(header, payload, key or real)


def unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': ACCESS_TOKEN_TYPE})}.{part(claims)}."


PARTNER_PROBE = (
    """query($id: ID!, $openid: String!) { partner { __typename
  ... on PartnerQuery { clientId account(id: $id) { ...Result }
    accountByOpenid(app: "shop-mp", openid: $openid) { ...Result } }
  ... on Error { code } } }"""
    + FRAGMENTS
)


def refused_tokens(gw: Harness, world: World, login: dict[str, Any]) -> dict[str, str]:
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    real_kid = gw.app.state.services.secrets.signing_keys.current.kid
    an_hour_ago = int(utcnow().timestamp()) - 3600
    return {
        "frontend access token": world.tokens["alice"],
        "frontend refresh token": login["refreshToken"],
        "signed by a foreign key": forge(gw, key=stranger),
        "foreign key under our kid": forge(gw, key=stranger, kid=real_kid),
        "expired": forge(gw, iat=an_hour_ago - 300, exp=an_hour_ago),
        "frontend audience": forge(gw, aud=FRONTEND_AUDIENCE),
        "another issuer": forge(gw, iss="someone-else"),
        "no subject": forge(gw, sub=None),
        "not an access token": forge(gw, header={"typ": "JWT"}),
        "alg none": unsigned({"iss": ISSUER, "aud": PARTNER_AUDIENCE, "sub": "crm"}),
        "unknown partner": forge(gw, sub="ghost", client_id="ghost"),
        "garbage": "not.a.token",
    }


async def test_only_a_real_partner_token_opens_partner(gw: Harness, world: World) -> None:
    login = await gw.login("shop-mp", "alice")
    variables = {"id": world.accounts["alice"], "openid": world.openid("alice", "shop-mp")}
    accepted = Probe(gw, forge(gw))  # the forger is right: the defects below are the reason
    assert (await accepted(PARTNER_PROBE, variables))["partner"]["clientId"] == "crm"
    for name, token in refused_tokens(gw, world, login).items():
        p = Probe(gw, token)
        body = await p.raw(PARTNER_PROBE, variables)
        if name == "frontend access token":  # a live token, of a person: no partner access
            partner = body["data"]["partner"]
            assert partner == {"__typename": "NotAuthenticatedError", "code": "NOT_LOGGED_IN"}
        else:  # not a live token at all: refused as a whole (RFC 6750)
            expected = "TOKEN_EXPIRED" if name == "expired" else "INVALID_TOKEN"
            assert body["errors"][0]["extensions"]["code"] == expected, name
            assert "data" not in body, name
        p.assert_never_shows(world.everything())


FRONTEND_ONLY = {
    "logout": "mutation { logout { __typename ... on Error { code } } }",
    "bindCredential": """mutation { bindCredential(input: {username: "crm.user",
      password: "correct horse battery staple"}) { __typename ... on Error { code } } }""",
    "changePassword": """mutation { changePassword(input: {currentPassword: "x",
      newPassword: "correct horse battery staple"}) { __typename ... on Error { code } } }""",
    "linkWechat": """mutation($code: String!) { linkWechat(input: {app: "club-mp", code: $code}) {
      __typename ... on Error { code } } }""",
    "unlinkIdentity": """mutation($identity: ID!) { unlinkIdentity(id: $identity) {
      __typename ... on Error { code } } }""",
    "revokeSession": """mutation($session: ID!) { revokeSession(id: $session) {
      __typename ... on Error { code } } }""",
    "bindPhoneNumber": """mutation($phone: String!) { bindPhoneNumber(input: {code: $phone}) {
      __typename ... on Error { code } } }""",
    "bindUnionId": """mutation { bindUnionId(input: {encryptedData: "x", iv: "y"}) {
      __typename ... on Error { code } } }""",
}


async def test_two_partner_fields_in_one_request_both_authenticate(gw: Harness) -> None:
    crm = await probe(gw, "crm")
    data = await crm("{ a: partner { __typename } b: partner { __typename } }")
    assert data == {"a": {"__typename": "PartnerQuery"}, "b": {"__typename": "PartnerQuery"}}


async def test_a_partner_token_is_no_frontend_login(gw: Harness, world: World) -> None:
    pusher = await probe(gw, "pusher")
    data = await pusher.partner(LOOKUP_BY_ID, {"id": world.accounts["alice"]})
    identity = items_of(data["account"])[0]["id"]
    phone = await gw.upstream.post(
        "/sandbox/phone-codes",
        json={"appid": gw.appid("shop-mp"), "user": "alice", "phone": "13800138000"},
    )
    variables = {
        "code": await gw.mint("club-mp", "someone-new"),
        "identity": identity,
        "session": global_id("LoginSessionInfo", uuid.uuid4()),
        "phone": phone.json()["code"],
    }
    for name, mutation in FRONTEND_ONLY.items():
        used = {k: v for k, v in variables.items() if f"${k}" in mutation}
        answer = (await pusher(mutation, used))[name]
        assert answer == {"__typename": "NotAuthenticatedError", "code": "NOT_LOGGED_IN"}, name
    assert (await pusher("{ viewer { id } checkSession { valid } }")) == {
        "viewer": None,
        "checkSession": {"valid": False},
    }
    # nothing happened to alice: her login and her identities are as they were
    alice = Probe(gw, world.tokens["alice"])
    assert (await alice("{ checkSession { valid } }"))["checkSession"]["valid"] is True
    assert len((await alice("{ viewer { identities { kind } } }"))["viewer"]["identities"]) == 5


# -- partners that go away ----------------------------------------------------------------------


async def test_a_partner_removed_from_the_config_is_refused_after_a_restart(
    database_url: str, tmp_path: Path, make_config: MakeConfig
) -> None:
    base = make_config(database_url)
    both = partner_config(base, tmp_path, partners_toml(["crm", "pusher"]))
    async with running(both) as gw:
        crm, pusher = await partner_token(gw, "crm"), await partner_token(gw, "pusher")
    async with running(partner_config(base, tmp_path, partners_toml(["pusher"]))) as gw:
        assert (await me(gw, pusher))["clientId"] == "pusher"  # tokens outlive a restart...
        assert await gw.refused(ME, token=crm) == "INVALID_TOKEN"
        refused = await oauth(gw, "crm")  # ...but not a partner's removal
        assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")
    async with running(both) as gw:  # put back in the config: back in service
        assert (await me(gw, crm))["clientId"] == "crm"
        assert (await oauth(gw, "crm")).status_code == 200


async def test_a_disabled_partner_loses_its_tokens_at_once(gw: Harness) -> None:
    registry = gw.app.state.services.partners
    secret = await registry.add("ops-bot", ["shop-mp"], [], ["accounts:lookup"])
    token = await partner_token(gw, "ops-bot", secret)
    assert (await me(gw, token))["clientId"] == "ops-bot"
    await registry.disable("ops-bot")  # what `gateway partners disable` does, from anywhere
    assert await gw.refused(ME, token=token) == "INVALID_TOKEN"
    refused = await oauth(gw, "ops-bot", secret)
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_client")


# -- the CLI ------------------------------------------------------------------------------------


@dataclass
class Cli:
    env: dict[str, str]
    database_url: str

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            *args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def ok(self, *args: str) -> str:
        code, out, err = await self(*args)
        assert code == 0, (args, out, err)
        return out


def secret_from(output: str) -> str:
    (line,) = [line for line in output.splitlines() if line.startswith("client_secret=")]
    return line.removeprefix("client_secret=")


def cli_env(database: Path, config_file: Path, keys: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return env | {
        "TEST_CLUB_SECRET": "club-secret-0123456789",
        "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "GATEWAY_CONFIG": str(config_file),
        "GATEWAY_SECRET_KEY": "test-secret-key-0123456789-abcdefghijkl",
        "GATEWAY_SIGNING_KEYS": str(keys),
    }


@pytest.fixture(scope="module")
def cli_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Signing keys made by `gateway keys rotate`, once for the module."""
    where = tmp_path_factory.mktemp("cli-keys")
    keys, config_file = where / "keys.json", where / "apps.toml"
    config_file.write_text(APPS_TOML, encoding="utf-8")
    env = cli_env(where / "unused.db", config_file, keys)
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "keys", "rotate"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "new signing key" in done.stdout
    return keys


@pytest.fixture
async def cli(tmp_path: Path, sqlite_template: Path, cli_keys: Path) -> Cli:
    """The CLI's environment: a migrated SQLite file, the test apps, keys made by the CLI."""
    database = tmp_path / "cli.db"
    shutil.copy(sqlite_template, database)
    config_file = tmp_path / "cli-apps.toml"
    config_file.write_text(APPS_TOML, encoding="utf-8")
    env = cli_env(database, config_file, cli_keys)
    return Cli(env, env["GATEWAY_DATABASE_URL"])


async def test_cli_partner_lifecycle_against_a_running_gateway(
    cli: Cli, tmp_path: Path, make_config: MakeConfig
) -> None:
    added = await cli.ok(
        "partners", "add", "ops-bot", "--apps", "shop-mp,news-oa", "--platforms",
        "test-platform", "--scopes", "accounts:lookup,identities:identifiers",
    )  # fmt: skip
    secret = secret_from(added)
    assert len(secret) >= 32
    assert "client_id=ops-bot" in added
    assert "shown once" in added
    listed = await cli.ok("partners", "list")
    assert listed.splitlines() == [
        "ops-bot\tactive\tcli\tapps=news-oa,shop-mp\tplatforms=test-platform"
        "\tscopes=accounts:lookup,identities:identifiers"
    ]
    assert secret not in listed
    assert hashlib.sha256(secret.encode()).hexdigest() not in listed

    async with running(make_config(cli.database_url)) as gw:  # the same database
        await gw.login("shop-mp", "alice")
        ids = await gw.wechat_ids("shop-mp", "alice")
        openid, unionid = ids["openid"], ids["unionid"]
        token = await partner_token(gw, "ops-bot", secret)
        found = await gw.gql(LOOKUP, {"openid": openid}, token=token)
        lookup = found["data"]["partner"]["accountByOpenid"]
        assert lookup["found"] is True
        assert sorted(map(str, lookup["account"]["identities"]["items"])) == sorted(
            [
                str({"kind": "WECHAT_OPENID", "openid": openid, "unionid": None}),
                str({"kind": "WECHAT_UNIONID", "openid": None, "unionid": unionid}),
            ]
        )

        rotated = secret_from(await cli.ok("partners", "rotate-secret", "ops-bot"))
        assert rotated != secret
        assert (await oauth(gw, "ops-bot", secret)).status_code == 401
        token = await partner_token(gw, "ops-bot", rotated)

        assert "disabled" in await cli.ok("partners", "disable", "ops-bot")
        assert (await oauth(gw, "ops-bot", rotated)).status_code == 401
        assert await gw.refused(LOOKUP, {"openid": openid}, token=token) == "INVALID_TOKEN"
    listed = await cli.ok("partners", "list")
    assert listed.startswith("ops-bot\tdisabled\tcli\t")
    assert secret not in listed
    assert rotated not in listed


def partner_rows(database_url: str) -> list[tuple[str, str]]:
    path = database_url.removeprefix("sqlite+aiosqlite:///")
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT client_id, source FROM partners ORDER BY client_id").fetchall()


async def test_cli_refuses_bad_partners(cli: Cli) -> None:
    results = await asyncio.gather(
        cli("partners", "add", "typo-bot", "--apps", "shop-mp,nope-mp"),
        cli("partners", "add", "greedy-bot", "--apps", "shop-mp", "--scopes", "accounts:all"),
        cli("partners", "rotate-secret", "ghost"),
    )
    for (code, out, err), needle in zip(results, ["nope-mp", "accounts:all", "ghost"], strict=True):
        assert code == 1, (out, err)
        assert err.startswith("gateway: ")
        assert needle in err
        assert "client_secret" not in out
        assert "Traceback" not in err
    assert partner_rows(cli.database_url) == []  # nothing was half-added
    await cli.ok("partners", "add", "twin-bot", "--apps", "shop-mp")
    code, out, err = await cli("partners", "add", "twin-bot", "--apps", "club-mp")
    assert (code, "already exists" in err, "client_secret" in out) == (1, True, False)
    assert partner_rows(cli.database_url) == [("twin-bot", "cli")]


async def test_config_partners_are_changed_in_the_config_not_the_cli(
    cli: Cli, tmp_path: Path, make_config: MakeConfig
) -> None:
    config = partner_config(make_config(cli.database_url), tmp_path, partners_toml(["crm"]))
    async with running(config):  # start-up syncs the config's partners into the database
        pass
    listed = await cli.ok("partners", "list")
    assert listed.startswith("crm\tactive\tconfig\tapps=news-oa,shop-mp\t")
    assert secret_of("crm") not in listed
    for action in ("rotate-secret", "disable"):
        code, out, err = await cli("partners", action, "crm")
        assert code == 1
        assert "config" in err
        assert "client_secret" not in out
    async with running(config) as gw:  # and crm's own secret still works
        assert (await oauth(gw, "crm")).status_code == 200
