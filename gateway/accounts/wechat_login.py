"""Login by WeChat code, for every kind of app: exchange at WeChat, resolve the account (unionid
first, then openid; merging accounts the unionid proves to be one person), open a session.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.accounts import graph
from gateway.accounts.graph import IdentityKey
from gateway.accounts.merge import merge_accounts
from gateway.accounts.profile import keep_profile
from gateway.audit import ClientInfo, record
from gateway.config import AppConfig, AppKind, GatewayConfig
from gateway.errors import GatewayError
from gateway.metrics import LOGINS
from gateway.sessions.service import IssuedTokens, Sessions, Viewer
from gateway.store.db import Database
from gateway.store.models import IdentityKind, WechatSession, utcnow
from gateway.store.secretbox import SecretBox
from gateway.wechat.client import WeChatClient
from gateway.wechat.codes import check_code
from gateway.wechat.errors import WeChatError
from gateway.wechat.oauth import OAuthStates
from gateway.wechat.shared_flight import SharedFlight
from gateway.wechat.singleflight import SingleFlight, code_key

log = logging.getLogger(__name__)
_PROFILE_SCOPES = frozenset({"snsapi_userinfo", "snsapi_login"})
_STATE_KINDS = frozenset({AppKind.OFFICIAL_ACCOUNT, AppKind.WEBSITE})


@dataclass(frozen=True)
class WechatFacts:
    """What one code told us about the user, whatever the door."""

    openid: str
    unionid: str | None
    snapshot: bool = False
    nickname: str | None = None
    avatar_url: str | None = None
    session_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class LoginOutcome:
    tokens: IssuedTokens
    is_new_account: bool
    merged: bool = False


def facts_codec(
    box: SecretBox,
) -> tuple[Callable[[str, WechatFacts], str], Callable[[str, str], WechatFacts]]:
    """How an exchange outcome travels through Redis: the session_key sealed, bound to the key."""

    def encode(key: str, facts: WechatFacts) -> str:
        data = asdict(facts)
        if facts.session_key:
            data["session_key"] = box.seal(facts.session_key, key)
        return json.dumps(data)

    def decode(key: str, raw: str) -> WechatFacts:
        data = json.loads(raw)
        if data.get("session_key"):
            data["session_key"] = box.open(data["session_key"], key)
        return WechatFacts(**data)

    return encode, decode


_VERDICTS = frozenset({"INVALID_CODE", "CODE_USED", "RISK_BLOCKED"})


def _remember(exc: Exception) -> bool:
    """WeChat's verdict on a code is final; anything else (busy, unreadable, rate-limited) may
    pass, so a retry must reach WeChat again."""
    return isinstance(exc, WeChatError) and exc.code in _VERDICTS


def identity_keys(app: AppConfig, facts: WechatFacts) -> list[IdentityKey]:
    """Unionid first: it is what joins the doors of one open platform."""
    keys = []
    if facts.unionid and app.platform:
        keys.append(IdentityKey(IdentityKind.WECHAT_UNIONID, app.platform, facts.unionid))
    keys.append(IdentityKey(IdentityKind.WECHAT_OPENID, app.appid, facts.openid))
    return keys


class WechatLogin:
    def __init__(
        self,
        config: GatewayConfig,
        db: Database,
        wechat: WeChatClient,
        exchanges: SingleFlight[WechatFacts],
        sessions: Sessions,
        box: SecretBox,
        states: OAuthStates,
        shared: SharedFlight[WechatFacts] | None = None,
    ) -> None:
        self._config = config
        self._db = db
        self._wechat = wechat
        self._exchanges = exchanges
        self._sessions = sessions
        self._box = box
        self._states = states
        self._shared = shared

    def app(self, key: str) -> AppConfig:
        app = self._config.app(key)
        if app is None:
            raise GatewayError(
                "UNKNOWN_APP", f"No app is configured with key {key!r}.", field="app"
            )
        return app

    async def login_by_code(
        self, app_key: str, code: str, client: ClientInfo, state: str | None = None
    ) -> LoginOutcome:
        app = self.app(app_key)
        check_code(code)
        if app.kind in _STATE_KINDS:
            self._states.verify(app, state)
        try:
            facts = await self.exchange(app, code)
            if facts.snapshot:
                raise GatewayError(
                    "SNAPSHOT_USER",
                    "This is a WeChat snapshot-page visitor: ask "
                    "the user to open the page in WeChat to log in.",
                )
        except GatewayError as exc:
            await self._record_failure(app, client, exc)
            raise
        return await self._sign_in(app, facts, client)

    async def link(
        self, viewer: Viewer, app_key: str, code: str, client: ClientInfo, state: str | None = None
    ) -> graph.Resolution:
        """Add a WeChat identity to the viewer's account.

        Identities already on another account are a conflict, unless WeChat's own answer links
        that account to the viewer's (the viewer holds one of the keys, say the unionid, and the
        other account holds the rest): then they are one person and merge.
        """
        app = self.app(app_key)
        check_code(code)
        if app.kind in _STATE_KINDS:
            self._states.verify(app, state)
        facts = await self.exchange(app, code)
        if facts.snapshot:
            raise GatewayError("SNAPSHOT_USER", "A snapshot-page visitor cannot be linked.")
        keys = identity_keys(app, facts)
        async with self._db.transaction() as s:
            owners = {i.account_id for i in (await graph.find(s, keys)).values()}
            if owners - {viewer.account_id} and viewer.account_id not in owners:
                raise GatewayError(
                    "IDENTITY_CONFLICT",
                    "This WeChat identity belongs to another account; log in with it instead.",
                )
            if not owners:
                added = await graph.link(s, viewer.account_id, keys, app.key)
                resolution = graph.Resolution(viewer.account_id, False, added)
                if facts.session_key:
                    await self._keep_session_key(s, app, facts.openid, facts.session_key)
            else:
                resolution = await self.resolve(s, app, facts, client)
            record(
                s,
                "link",
                client,
                account_id=resolution.account_id,
                session_id=viewer.session_id,
                app_key=app.key,
                merged=resolution.merged,
                linked=[k.kind.value for k in resolution.new_identities],
            )
        return resolution

    async def exchange(self, app: AppConfig, code: str) -> WechatFacts:
        """One upstream exchange per (app, code), however often and wherever the client sends
        it: collapsed in this process, and across processes when Redis is configured."""
        key = code_key(app.appid, code)

        async def once() -> WechatFacts:
            return await self._exchange_once(app, code)

        async def shared() -> WechatFacts:
            assert self._shared is not None
            return await self._shared.run(key, once, _remember)

        return await self._exchanges.run(key, shared if self._shared else once, _remember)

    async def _exchange_once(self, app: AppConfig, code: str) -> WechatFacts:
        if app.kind == AppKind.MINIPROGRAM:
            session = await self._wechat.code2session(app, code)
            return WechatFacts(session.openid, session.unionid, session_key=session.session_key)
        grant = await self._wechat.oauth2_access_token(app, code)
        if grant.is_snapshot_user:
            return WechatFacts(grant.openid, None, snapshot=True)
        if grant.scope not in _PROFILE_SCOPES:
            return WechatFacts(grant.openid, grant.unionid)
        try:
            profile = await self._wechat.userinfo(grant)
        except WeChatError as exc:  # the login stands without a profile
            log.warning("wechat userinfo failed app=%s code=%s", app.key, exc.code)
            return WechatFacts(grant.openid, grant.unionid)
        return WechatFacts(
            grant.openid,
            grant.unionid or profile.unionid,
            nickname=profile.nickname,
            avatar_url=profile.avatar_url,
        )

    async def _sign_in(
        self, app: AppConfig, facts: WechatFacts, client: ClientInfo
    ) -> LoginOutcome:
        async with self._db.transaction() as s:
            resolution = await self.resolve(s, app, facts, client)
            await keep_profile(s, resolution.account_id, facts.nickname, facts.avatar_url)
            tokens = await self._sessions.start(s, resolution.account_id, app.key, client)
            record(
                s,
                "register" if resolution.is_new else "login",
                client,
                account_id=resolution.account_id,
                session_id=tokens.session_id,
                app_key=app.key,
                door=f"wechat_{app.kind}",
                linked=[k.kind.value for k in resolution.new_identities],
            )
        LOGINS.labels(f"wechat_{app.kind}", "new" if resolution.is_new else "ok").inc()
        return LoginOutcome(tokens, resolution.is_new, resolution.merged)

    async def resolve(
        self, s: AsyncSession, app: AppConfig, facts: WechatFacts, client: ClientInfo | None
    ) -> graph.Resolution:
        """Find or create the account; a unionid WeChat vouches for may merge accounts."""

        async def merge(owners: set[uuid.UUID]) -> uuid.UUID:
            return await merge_accounts(s, owners, reason="unionid", client=client, app_key=app.key)

        resolution = await graph.find_or_create(s, identity_keys(app, facts), app.key, merge=merge)
        if facts.session_key:
            await self._keep_session_key(s, app, facts.openid, facts.session_key)
        return resolution

    async def _keep_session_key(
        self, s: AsyncSession, app: AppConfig, openid: str, session_key: str
    ) -> None:
        """Upsert: WeChat may rotate the key at every wx.login, and only the latest decrypts."""
        sealed = self._box.seal(session_key, f"{app.appid}:{openid}")
        now = utcnow()
        insert = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
        stmt = insert(WechatSession).values(
            id=uuid.uuid4(),
            appid=app.appid,
            openid=openid,
            session_key_sealed=sealed,
            updated_at=now,
        )
        await s.execute(
            stmt.on_conflict_do_update(
                index_elements=["appid", "openid"],
                set_={"session_key_sealed": sealed, "updated_at": now},
            )
        )

    async def _record_failure(self, app: AppConfig, client: ClientInfo, exc: GatewayError) -> None:
        errcode = exc.errcode if isinstance(exc, WeChatError) else None
        log.info("wechat login refused app=%s code=%s errcode=%s", app.key, exc.code, errcode)
        LOGINS.labels(f"wechat_{app.kind}", exc.code).inc()
        async with self._db.transaction() as s:
            record(
                s,
                "login_failed",
                client,
                app_key=app.key,
                door=f"wechat_{app.kind}",
                reason=exc.code,
                errcode=errcode,
            )
