"""Reference (b): a minimal find-or-create mini-program login on the gateway's own stack.

strawberry (parse and validation caches on) + one shared httpx client to the WeChat emulator
(``jscode2session``) + SQLAlchemy async (one table, one transaction: select, insert when
missing) + one ES256 JWT signed with joserfc. No session row, no refresh token, no audit, no
unionid: the least a real login does. The gateway's loginByCode is measured against this.

On SQLite it uses the gateway's connection settings (WAL, ``synchronous=NORMAL``, and
``BEGIN IMMEDIATE`` for the writing transaction, without which concurrent find-or-create
transactions fail with "database is locked").
"""

from __future__ import annotations

import argparse
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import strawberry
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import DateTime, String, UniqueConstraint, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.types import Info


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "bench_ref_user"
    __table_args__ = (UniqueConstraint("appid", "openid"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    appid: Mapped[str] = mapped_column(String(64))
    openid: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass
class Deps:
    sessions: async_sessionmaker[Any]
    http: httpx.AsyncClient
    key: ECKey
    apps: dict[str, tuple[str, str]]  # key -> (appid, secret)


@strawberry.type
class LoginPayload:
    token: str
    user_id: strawberry.ID
    is_new: bool


async def _find_or_create(deps: Deps, appid: str, openid: str) -> tuple[uuid.UUID, bool]:
    for _ in range(2):
        try:
            async with deps.sessions() as s, s.begin():
                query = select(User).where(User.appid == appid, User.openid == openid)
                user = (await s.execute(query)).scalar_one_or_none()
                if user is not None:
                    return user.id, False
                user = User(
                    id=uuid.uuid4(), appid=appid, openid=openid, created_at=datetime.now(UTC)
                )
                s.add(user)
            return user.id, True
        except IntegrityError:  # a concurrent first login of the same user won
            continue
    raise RuntimeError("find-or-create kept conflicting")


@strawberry.type
class Query:
    @strawberry.field
    def ping(self) -> str:
        return "pong"


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def login_by_code(self, info: Info[Deps, None], app: str, code: str) -> LoginPayload:
        deps = info.context
        appid, secret = deps.apps[app]
        answer = await deps.http.get(
            "/sns/jscode2session",
            params={
                "appid": appid,
                "secret": secret,
                "js_code": code,
                "grant_type": "authorization_code",
            },
        )
        data = answer.json()
        if data.get("errcode"):
            raise ValueError(f"WeChat refused the code: {data['errcode']}")
        user_id, is_new = await _find_or_create(deps, appid, data["openid"])
        now = int(time.time())
        token = jwt.encode(
            {"alg": "ES256", "kid": deps.key.kid, "typ": "at+jwt"},
            {
                "iss": "bench-ref",
                "aud": "frontend",
                "sub": str(user_id),
                "iat": now,
                "exp": now + 900,
                "jti": secrets.token_urlsafe(12),
            },
            deps.key,
        )
        return LoginPayload(token=token, user_id=strawberry.ID(str(user_id)), is_new=is_new)


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[lambda: ParserCache(maxsize=512), lambda: ValidationCache(maxsize=512)],
)


def _engine(url: str) -> AsyncEngine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_async_engine(url, pool_size=10, max_overflow=20)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class _View(GraphQL[Deps, None]):
    def __init__(self, deps: dict[str, Deps]) -> None:
        super().__init__(schema, graphql_ide=None)
        self._deps = deps

    async def get_context(self, request: Any, response: Any) -> Deps:
        return self._deps["deps"]


def create_app(database_url: str, wechat_base: str, apps: dict[str, tuple[str, str]]) -> Starlette:
    holder: dict[str, Deps] = {}

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        engine = _engine(database_url)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with httpx.AsyncClient(base_url=wechat_base, timeout=10) as http:
            holder["deps"] = Deps(
                async_sessionmaker(engine, expire_on_commit=False),
                http,
                ECKey.generate_key("P-256", auto_kid=True),
                apps,
            )
            yield
        await engine.dispose()

    return Starlette(routes=[Route("/graphql", _View(holder))], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--wechat", required=True, help="the emulator's base URL")
    parser.add_argument("--app", nargs=3, action="append", metavar=("KEY", "APPID", "SECRET"))
    args = parser.parse_args()
    apps = {key: (appid, secret) for key, appid, secret in args.app or []}
    app = create_app(args.database_url, args.wechat, apps)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
