"""Login by WeChat code: exchange at WeChat, resolve the account, open a login session."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts import graph
from gateway.accounts.graph import IdentityKey
from gateway.audit import ClientInfo, record
from gateway.config import AppConfig, AppKind, GatewayConfig
from gateway.errors import GatewayError, invalid_input
from gateway.sessions.service import IssuedTokens, Sessions
from gateway.store.db import Database
from gateway.store.models import IdentityKind, WechatSession, utcnow
from gateway.store.secretbox import SecretBox
from gateway.wechat.client import CodeSession, WeChatClient
from gateway.wechat.errors import WeChatError
from gateway.wechat.singleflight import SingleFlight, code_key

log = logging.getLogger(__name__)
_CODE = re.compile(r"^[\x21-\x7e]{1,128}$")


@dataclass(frozen=True)
class LoginOutcome:
    tokens: IssuedTokens
    is_new_account: bool


def _remember(exc: Exception) -> bool:
    """WeChat's verdict on a code is final; a transient failure is not."""
    return isinstance(exc, WeChatError) and not exc.retryable


class WechatLogin:
    def __init__(
        self,
        config: GatewayConfig,
        db: Database,
        wechat: WeChatClient,
        exchanges: SingleFlight[CodeSession],
        sessions: Sessions,
        box: SecretBox,
    ) -> None:
        self._config = config
        self._db = db
        self._wechat = wechat
        self._exchanges = exchanges
        self._sessions = sessions
        self._box = box

    def app(self, key: str) -> AppConfig:
        app = self._config.app(key)
        if app is None:
            raise GatewayError(
                "UNKNOWN_APP", f"No app is configured with key {key!r}.", field="app"
            )
        return app

    async def login_by_code(self, app_key: str, code: str, client: ClientInfo) -> LoginOutcome:
        app = self.app(app_key)
        if not _CODE.match(code):
            raise invalid_input("code", "The code must be 1 to 128 printable ASCII characters.")
        if app.kind != AppKind.MINIPROGRAM:
            raise GatewayError(
                "UNSUPPORTED_APP_KIND",
                f"App {app.key!r} is a {app.kind}; only mini-programs log in by "
                "code in this version.",
                field="app",
            )
        try:
            exchange = await self._exchanges.run(
                code_key(app.appid, code), lambda: self._wechat.code2session(app, code), _remember
            )
        except WeChatError as exc:
            await self._record_failure(app, client, exc)
            raise
        return await self._sign_in(app, exchange, client)

    async def _sign_in(
        self, app: AppConfig, exchange: CodeSession, client: ClientInfo
    ) -> LoginOutcome:
        keys = [IdentityKey(IdentityKind.WECHAT_OPENID, app.appid, exchange.openid)]
        if exchange.unionid and app.platform:
            keys.append(IdentityKey(IdentityKind.WECHAT_UNIONID, app.platform, exchange.unionid))
        async with self._db.transaction() as s:
            resolution = await graph.find_or_create(s, keys, app.key)
            await self._keep_session_key(s, app, exchange)
            tokens = await self._sessions.start(s, resolution.account_id, app.key, client)
            record(
                s,
                "register" if resolution.is_new else "login",
                client,
                account_id=resolution.account_id,
                session_id=tokens.session_id,
                app_key=app.key,
                door="wechat_code",
                linked=[k.kind.value for k in resolution.new_identities],
            )
        return LoginOutcome(tokens, resolution.is_new)

    async def _keep_session_key(
        self, s: AsyncSession, app: AppConfig, exchange: CodeSession
    ) -> None:
        """Upsert: WeChat may rotate the key at every wx.login, and only the latest decrypts."""
        sealed = self._box.seal(exchange.session_key, f"{app.appid}:{exchange.openid}")
        values = {
            "appid": app.appid,
            "openid": exchange.openid,
            "session_key_sealed": sealed,
            "updated_at": utcnow(),
        }
        insert = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        stmt = insert(WechatSession).values(id=uuid.uuid4(), **values)
        await s.execute(
            stmt.on_conflict_do_update(
                index_elements=["appid", "openid"],
                set_={"session_key_sealed": sealed, "updated_at": values["updated_at"]},
            )
        )

    async def _record_failure(self, app: AppConfig, client: ClientInfo, exc: WeChatError) -> None:
        log.info("wechat login refused app=%s code=%s errcode=%s", app.key, exc.code, exc.errcode)
        async with self._db.transaction() as s:
            record(
                s,
                "login_failed",
                client,
                app_key=app.key,
                door="wechat_code",
                reason=exc.code,
                errcode=exc.errcode,
            )
