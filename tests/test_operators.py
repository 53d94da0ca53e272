"""`gateway accounts ...` and `gateway audit ...` against the database a running gateway uses,
on SQLite and PostgreSQL. The commands run through ``gateway.cli.main`` in a worker thread (off
the test's event loop; a subprocess per command would cost seconds each), and once for real as
a subprocess."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col

from gateway.accounts.tables import Account
from gateway.metrics import TOKEN_CHECKS
from gateway.sessions.cache import MAX_AGE_SECONDS
from gateway.store.models import AuditEvent, utcnow
from tests.support.accounts import account_uuid
from tests.support.cli import cli_for
from tests.support.harness import (
    REDIS_URL,
    Configure,
    Harness,
    MakeConfig,
    running,
    skip_or_fail,
)
from tests.support.passwords import password_login, registered

BIND_PHONE = """mutation($code: String!) { bindPhoneNumber(input: {code: $code}) {
  __typename } }"""
DELETE = """mutation { deleteAccount { __typename
  ... on DeleteAccountSuccess { pending } ... on Error { code } } }"""


async def test_find_show_disable_enable(
    database_url: str, make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(make_config(database_url)) as gw:
        cli = cli_for(gw, monkeypatch)
        alice = await gw.login("shop-mp", "alice")
        account = str(account_uuid(alice["account"]["id"]))
        ids = await gw.wechat_ids("shop-mp", "alice")

        # find by every identifier, and by id
        by_openid = await cli.json(
            "accounts", "find", "--app", "shop-mp", "--openid", ids["openid"]
        )
        assert [a["id"] for a in by_openid] == [account]
        by_unionid = await cli.json(
            "accounts", "find", "--platform", "test-platform", "--unionid", str(ids["unionid"])
        )
        assert [a["id"] for a in by_unionid] == [account]
        assert [a["id"] for a in await cli.json("accounts", "find", account)] == [account]
        bob = await registered(gw, "bob-ops")
        bob_id = str(account_uuid(bob["account"]["id"]))
        found = await cli.ok("accounts", "find", "--username", "BOB-ops")
        assert found.startswith(f"{bob_id}  active")
        assert (await cli("accounts", "find", "--username", "nobody-here"))[0] == 1
        assert (await cli("accounts", "find", "not-a-uuid"))[0] == 2

        # a phone however it is typed (gateway.phones, the rule every door shares)
        code = (
            await gw.upstream.post(
                "/sandbox/phone-codes",
                json={"appid": gw.appid("shop-mp"), "user": "alice", "phone": "13912345678"},
            )
        ).json()["code"]
        bound = await gw.gql(BIND_PHONE, {"code": code}, token=alice["accessToken"])
        assert bound["data"]["bindPhoneNumber"]["__typename"] == "BindPhoneNumberSuccess"
        for spelling in ("13912345678", "+86 139-1234-5678"):
            assert [a["id"] for a in await cli.json("accounts", "find", "--phone", spelling)] == [
                account
            ]
        assert (await cli("accounts", "find", "--phone", "not a phone"))[0] == 2

        # show: identities in full, live sessions, events
        shown = await cli.json("accounts", "show", account)
        subjects = {ids["openid"], ids["unionid"], "+8613912345678"}
        assert {i["subject"] for i in shown["identities"]} == subjects
        assert len(shown["sessions"]) == 1
        assert "register" in {e["kind"] for e in shown["lastEvents"]}
        text = await cli.ok("accounts", "show", account)
        assert "identities (3):" in text
        assert "live sessions (1):" in text

        # disable: sessions revoked at once, logins refused; enable: login again
        disabled = await cli.json("accounts", "disable", account, "--reason", "ticket 42")
        assert disabled == {"account": account, "status": "disabled", "revokedSessions": 1}
        assert await gw.refused("{ viewer { id } }", token=alice["accessToken"]) == "INVALID_TOKEN"
        refused = await gw.gql(
            """mutation($c: String!) { loginByCode(input: {app: "shop-mp", code: $c,
            client: {platform: "ios"}}) { __typename ... on Error { code } } }""",
            {"c": await gw.mint("shop-mp", "alice")},
        )
        assert refused["data"]["loginByCode"]["code"] == "ACCOUNT_DISABLED"
        assert "ticket 42" in await cli.ok("accounts", "show", account)
        assert "enabled" in await cli.ok("accounts", "enable", account, "--reason", "resolved")
        again = await gw.login("shop-mp", "alice")
        assert again["account"]["id"] == alice["account"]["id"]
        assert await gw.refused("{ viewer { id } }", token=alice["accessToken"]) == "INVALID_TOKEN"


async def test_export_audit_delete(
    database_url: str, make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(make_config(database_url)) as gw:
        cli = cli_for(gw, monkeypatch)
        alice = await gw.login("shop-mp", "alice")
        account = str(account_uuid(alice["account"]["id"]))
        ids = await gw.wechat_ids("shop-mp", "alice")
        openid = ["--app", "shop-mp", "--openid", str(ids["openid"])]
        await cli.ok("accounts", "disable", account, "--reason", "ticket 42")
        await cli.ok("accounts", "enable", account, "--reason", "resolved")
        await registered(gw, "bob-ops")

        # export: the personalData document, nothing raw from WeChat
        exported = json.loads(await cli.ok("accounts", "export", account, "--reason", "PIPL 45"))
        assert exported["account"]["id"] == account
        assert str(ids["openid"]) not in json.dumps(exported)
        assert {"account_disabled", "account_enabled"} <= {
            e["kind"] for e in exported["auditEvents"]
        }

        # the audit trail: JSON lines, filtered; every operator action with its reason
        lines = await cli.ok("audit", "--account", account, "--kind", "account_disabled")
        (event,) = [json.loads(line) for line in lines.splitlines()]
        assert event["detail"]["reason"] == "ticket 42"
        assert event["detail"]["operator"]
        exports = await cli.ok("audit", "--account", account, "--kind", "account_exported")
        assert json.loads(exports)["detail"]["reason"] == "PIPL 45"
        since = (utcnow() + timedelta(hours=1)).isoformat()
        assert await cli.ok("audit", "--since", since) == ""
        assert len((await cli.ok("audit", "--limit", "2")).splitlines()) == 2

        # delete: at once, whatever the grace period
        assert "deleted" in await cli.ok("accounts", "delete", account, "--reason", "request")
        assert (await cli("accounts", "delete", account, "--reason", "twice"))[0] == 1
        assert (await gw.login("shop-mp", "alice"))["isNewAccount"] is True
        assert await cli.json("accounts", "find", *openid)
        deleted = await cli.ok("audit", "--account", account, "--kind", "account_deleted")
        detail = json.loads(deleted)["detail"]
        assert (detail["by"], detail["reason"]) == ("operator", "request")
        shown = await cli.json("accounts", "show", account)
        assert (shown["account"]["status"], shown["identities"]) == ("deleted", [])
        assert (await password_login(gw, "bob-ops"))["__typename"] == "LoginSuccess"


async def test_purge_due_and_audit_prune(
    database_url: str, configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(configure(database_url, accounts={"deletion_grace_days": 7})) as gw:
        cli = cli_for(gw, monkeypatch, "\n[audit]\nretention_days = 30\n")
        alice = await gw.login("shop-mp", "alice")
        account = account_uuid(alice["account"]["id"])
        pending = await gw.gql(DELETE, token=alice["accessToken"])
        assert pending["data"]["deleteAccount"]["pending"] is True
        assert await cli.json("accounts", "purge-due") == {"deleted": 0}
        async with gw.app.state.services.db.transaction() as s:
            await s.execute(
                update(Account)
                .where(col(Account.id) == account)
                .values(deletion_due_at=utcnow() - timedelta(minutes=1))
            )
        assert await cli.json("accounts", "purge-due") == {"deleted": 1}
        assert (await gw.login("shop-mp", "alice"))["isNewAccount"] is True

        assert "0 audit event(s) older than 30 days" in await cli.ok("audit", "prune")
        async with gw.app.state.services.db.transaction() as s:
            await s.execute(
                update(AuditEvent)
                .where(col(AuditEvent.account_id) == account)
                .values(created_at=utcnow() - timedelta(days=31))
            )
        pruned = await cli.ok("audit", "prune", "--older-than", "30")
        assert pruned.startswith(("2 audit", "3 audit", "4 audit"))
        assert await cli.ok("audit", "--account", str(account)) == ""
        (event,) = (await cli.ok("audit", "--kind", "audit_pruned", "--limit", "1")).splitlines()
        assert json.loads(event)["detail"]["older_than_days"] == 30


UNHEARD = "GATEWAY_REDIS_URL is not set"


async def cached(gw: Harness, token: str) -> None:
    """Ask until the token check came from the gateway's cache (its Redis channel may still be
    subscribing), within a second: well under the cache's age."""
    hits = TOKEN_CHECKS.labels("cache")
    deadline = asyncio.get_running_loop().time() + 1.0
    while True:
        before = hits._value.get()
        assert await gw.viewer_id(token)
        if hits._value.get() > before:
            return
        assert asyncio.get_running_loop().time() < deadline, "never answered from the cache"
        await asyncio.sleep(0.02)


async def test_a_command_without_the_replicas_redis_warns(
    database_url: str, configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replicas that use Redis hear invalidations on Redis only: an operator command run
    without ``GATEWAY_REDIS_URL`` announces its change where they do not listen (PostgreSQL's
    NOTIFY, or the SQLite file's signal), so they may believe a cached token for up to the
    cache's age. Nothing in the configuration says whether replicas use Redis, so every command
    that changes an account says so on stderr, and still does its work; with the URL, or on
    the embedded default database, it says nothing."""
    if not REDIS_URL:
        skip_or_fail("Redis")
    assert REDIS_URL
    async with running(configure(database_url, redis_url=REDIS_URL)) as gw:
        cli = cli_for(gw, monkeypatch)
        alice = await gw.login("shop-mp", "alice")
        account = str(account_uuid(alice["account"]["id"]))
        await cached(gw, alice["accessToken"])  # the replica believes it from memory now

        code, out, err = await cli("accounts", "disable", account, "--reason", "ticket 7")
        assert code == 0
        assert "disabled" in out
        (warning,) = err.splitlines()
        assert warning.startswith(f"gateway: warning: {UNHEARD}")
        assert f"{MAX_AGE_SECONDS:g} s" in warning
        # (what it is about: the replica did not hear it, and would still answer this token
        # from its cache for the rest of the entry's age; not asserted, it is a matter of time)

        assert UNHEARD not in (await cli("accounts", "show", account))[2]  # reads: no warning
        monkeypatch.setenv("GATEWAY_REDIS_URL", REDIS_URL)
        code, _, err = await cli("accounts", "enable", account, "--reason", "done")
        assert (code, err) == (0, "")
