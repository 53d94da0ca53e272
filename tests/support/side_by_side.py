"""Two gateways side by side, one on the fast paths and one on the reference path
(``tests/test_fast_paths_equal.py``): their answers and rows normalised so that they compare
(random ids as labels given at first appearance, no times, no secrets), a readable diff, and a
pair of fresh PostgreSQL databases."""

from __future__ import annotations

import asyncio
import base64
import difflib
import json
import pprint
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.accounts.tables import Account, Identity, WechatSession
from gateway.sessions.tokens import hash_refresh_token
from gateway.store import migrate
from gateway.store.models import AuditEvent, LoginSession, RefreshToken
from gateway.store.secretbox import SecretBox
from tests.support.accounts import account_uuid
from tests.support.harness import Harness

SIDES = ("reference", "fast")
UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def claims_of(access_token: str) -> dict[str, Any]:
    """An access token's claims (no need to check the signature here)."""
    payload = access_token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


@dataclass
class Labels:
    """One gateway's random ids, each named by its first appearance in an answer."""

    names: dict[Any, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def give(self, prefix: str, value: Any) -> str:
        if value not in self.names:
            self.names[value] = f"{prefix}{self.counts.get(prefix, 0)}"
            self.counts[prefix] = self.counts.get(prefix, 0) + 1
        return self.names[value]

    def of(self, value: Any) -> str | None:
        """The label of a known id; ``?`` for one no answer showed; ``None`` stays ``None``."""
        if value is None:
            return None
        return self.names.get(value, "?")

    def id_of(self, label: str) -> Any:
        return next(value for value, name in self.names.items() if name == label)

    def detail(self, value: Any) -> Any:
        """An audit detail with every id in it replaced by its label."""
        if isinstance(value, dict):
            return {k: self.detail(v) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [self.detail(v) for v in value]
        if isinstance(value, str) and UUID_TEXT.match(value):
            return self.of(uuid.UUID(value))
        return value


class Side:
    """One gateway under test, with the labels of its ids."""

    def __init__(self, name: str, gw: Harness) -> None:
        self.name = name
        self.gw = gw
        self.labels = Labels()

    async def post(self, query: str, variables: dict[str, Any], token: str | None) -> Any:
        """The answer's data, or ``(status, error code)`` when the bearer token is refused."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        response = await self.gw.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        body = response.json()
        if response.status_code != 200:
            return response.status_code, body["errors"][0]["extensions"]["code"]
        assert "errors" not in body, body
        return body["data"]

    def answer(self, result: dict[str, Any]) -> dict[str, Any]:
        """A login or refresh result with its ids as labels and its secrets as labels too."""
        out = {k: v for k, v in result.items() if k not in ("accessToken", "refreshToken")}
        if "account" in result:
            out["account"] = self.labels.give("A", account_uuid(result["account"]["id"]))
        if "accessToken" in result:
            claims = claims_of(result["accessToken"])
            out["session"] = self.labels.give("S", uuid.UUID(claims["sid"]))
            out["access lifetime"] = claims["exp"] - claims["iat"]
            out["refresh"] = self.labels.give("R", hash_refresh_token(result["refreshToken"]))
        return out

    async def rows(self) -> dict[str, list[Any]]:
        """What the database holds, normalised (sorted; labels for ids; no times, no secrets)."""
        async with self.gw.app.state.services.db.reader() as s:

            async def all_of(model: Any) -> list[Any]:
                return list((await s.execute(select(model))).scalars().all())

            tables = [
                await all_of(m)
                for m in (Account, Identity, LoginSession, RefreshToken, WechatSession, AuditEvent)
            ]
        table = {
            name: [shape(row) for row in rows]
            for name, shape, rows in zip(self._SHAPES, self._shapes(tables), tables, strict=True)
        }
        return {name: sorted(rows, key=repr) for name, rows in table.items()}

    _SHAPES = ("accounts", "identities", "sessions", "refresh tokens", "session keys", "audit")

    def _shapes(self, tables: list[list[Any]]) -> list[Callable[[Any], tuple[Any, ...]]]:
        """Each table's row as the comparison sees it: labels, flags, no times, no secrets."""
        label = self.labels.of
        session_ends = {r.id: r.expires_at for r in tables[2]}
        secret = self.gw.config.settings.secret_key
        assert secret is not None
        box = SecretBox(secret.get_secret_value())
        latest = self.gw.upstream_app.state.sandbox.session_keys

        def account(a: Account) -> tuple[Any, ...]:
            pending = a.deletion_requested_at is not None
            gone = a.deleted_at is not None
            return label(a.id), a.status, label(a.merged_into_id), pending, gone, a.nickname

        def session(r: LoginSession) -> tuple[Any, ...]:
            lifetime = round((r.expires_at - r.created_at).total_seconds())
            client = (r.platform, r.channel, r.device_param, r.ip, r.user_agent)
            touched = r.last_used_at > r.created_at
            return (
                label(r.id),
                label(r.account_id),
                r.app_key,
                *client,
                lifetime,
                touched,
                (r.revoked_at is not None),
            )

        def token(t: RefreshToken) -> tuple[Any, ...]:
            ends_with_session = t.expires_at == session_ends.get(t.session_id)
            return (
                label(t.token_hash),
                label(t.session_id),
                t.used_at is not None,
                ends_with_session,
            )

        def key(k: WechatSession) -> tuple[Any, ...]:
            current = box.open(k.session_key_sealed, f"{k.appid}:{k.openid}")
            is_latest = current == latest.get((k.appid, k.openid))
            return k.appid, k.openid, is_latest, k.previous_key_sealed is not None

        def event(e: AuditEvent) -> tuple[Any, ...]:
            client = (e.platform, e.channel, e.device_param, e.ip, e.user_agent)
            detail = json.dumps(self.labels.detail(e.detail), sort_keys=True)
            return e.kind, label(e.account_id), label(e.session_id), e.app_key, *client, detail

        def identity(i: Identity) -> tuple[Any, ...]:
            return label(i.account_id), i.kind, i.scope, i.subject, i.app_key

        return [account, identity, session, token, key, event]


def differences(reference: Any, fast: Any) -> str:
    """A unified diff of two normalised things, the reference first."""
    before, after = (pprint.pformat(x, width=100).splitlines() for x in (reference, fast))
    diff = difflib.unified_diff(
        before, after, "fast_paths = false", "fast_paths = true", lineterm=""
    )
    return "\n".join(diff)


@contextmanager
def postgres_pair(server_url: str) -> Iterator[tuple[str, str]]:
    """Two migrated databases beside the test database (``<name>_reference``, ``<name>_fast``),
    dropped at the end."""
    base = make_url(server_url)
    names = [f"{base.database}_{side}" for side in SIDES]

    async def each(statement: str) -> None:
        admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            for name in names:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                if statement:
                    await conn.execute(text(statement.format(name=name)))
        await admin.dispose()

    try:
        asyncio.run(each('CREATE DATABASE "{name}"'))
        urls = [base.set(database=name).render_as_string(hide_password=False) for name in names]
        for url in urls:
            migrate.upgrade(url)
        yield urls[0], urls[1]
    finally:
        asyncio.run(each(""))
