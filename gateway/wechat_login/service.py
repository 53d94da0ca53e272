"""Login by WeChat code, for every kind of app: exchange at WeChat, resolve the account (unionid
first, then openid; merging accounts the unionid proves to be one person), open a session.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from gateway.accounts.model import (
    AccountGone,
    IdentityKey,
    IdentityView,
    MergeRefused,
    Resolution,
    wechat_keys,
)
from gateway.accounts.service import AccountGraph, SessionKey
from gateway.audit import ClientInfo, record
from gateway.config import AppConfig, AppKind, GatewayConfig
from gateway.errors import (
    WECHAT_CALL,
    AccountDisabled,
    CodeUsed,
    GatewayError,
    IdentityConflict,
    InvalidCode,
    InvalidInput,
    InvalidState,
    NotLoggedIn,
    RiskBlocked,
    SnapshotUser,
    UnknownApp,
    declares,
)
from gateway.limits import waiting_upstream
from gateway.metrics import LOGINS
from gateway.sessions.model import IssuedTokens, Viewer
from gateway.sessions.service import Sessions
from gateway.store.db import Database, UnitOfWork
from gateway.wechat.client import WeChatClient
from gateway.wechat.codes import check_code
from gateway.wechat.errors import WeChatError
from gateway.wechat.oauth import OAuthStates
from gateway.wechat.shared_flight import SharedFlight
from gateway.wechat.singleflight import SingleFlight, code_key
from gateway.wechat_login.facts import WechatFacts

log = logging.getLogger(__name__)


_PROFILE_SCOPES = frozenset({"snsapi_userinfo", "snsapi_login"})
_STATE_KINDS = frozenset({AppKind.OFFICIAL_ACCOUNT, AppKind.WEBSITE})


@dataclass(frozen=True)
class LoginOutcome:
    tokens: IssuedTokens
    is_new_account: bool
    merged: bool = False

    @property
    def deletion_cancelled(self) -> bool:
        return self.tokens.deletion_cancelled


_VERDICTS = (InvalidCode, CodeUsed, RiskBlocked)


def _remember(exc: Exception) -> bool:
    """WeChat's verdict on a code is final; anything else (busy, unreadable, rate-limited) may
    pass, so a retry must reach WeChat again."""
    return isinstance(exc, _VERDICTS) and exc.errcode is not None


def identity_keys(app: AppConfig, facts: WechatFacts) -> list[IdentityKey]:
    """Unionid first: it is what joins the doors of one open platform."""
    return wechat_keys(app.appid, facts.openid, app.platform, facts.unionid)


class WechatLogin:
    def __init__(
        self,
        config: GatewayConfig,
        db: Database,
        accounts: AccountGraph,
        wechat: WeChatClient,
        exchanges: SingleFlight[WechatFacts],
        sessions: Sessions,
        states: OAuthStates,
        shared: SharedFlight[WechatFacts] | None = None,
    ) -> None:
        self._config = config
        self._db = db
        self._accounts = accounts
        self._wechat = wechat
        self._exchanges = exchanges
        self._sessions = sessions
        self._states = states
        self._shared = shared

    @declares(UnknownApp)
    def app(self, key: str) -> AppConfig:
        app = self._config.app(key)
        if app is None:
            shown = key if len(key) <= 64 else key[:64] + "…"
            raise UnknownApp("No app is configured with key %(key)s.", key=repr(shown))
        return app

    @declares(UnknownApp, InvalidInput, InvalidState)
    def _checked(self, app_key: str, code: str, state: str | None) -> AppConfig:
        """What is checked before a code costs a WeChat call: the app, the code's shape, and
        for browser doors the signed ``state``."""
        app = self.app(app_key)
        check_code(code)
        if app.kind in _STATE_KINDS:
            self._states.verify(app, state)
        return app

    @declares(UnknownApp, InvalidInput, InvalidState, WECHAT_CALL, SnapshotUser, Sessions.start)
    async def login_by_code(
        self, app_key: str, code: str, client: ClientInfo, state: str | None = None
    ) -> LoginOutcome:
        app = self._checked(app_key, code, state)
        try:
            facts = await self.exchange(app, code)
            if facts.snapshot:
                raise SnapshotUser()
        except GatewayError as exc:
            await self._record_failure(app, client, exc)
            raise
        return await self._sign_in(app, facts, client)

    @declares(
        UnknownApp,
        InvalidInput,
        InvalidState,
        WECHAT_CALL,
        SnapshotUser,
        IdentityConflict,
        NotLoggedIn,
    )
    async def link(
        self,
        viewer: Viewer,
        app_key: str,
        code: str,
        client: ClientInfo,
        state: str | None = None,
        *,
        reauthenticated: str,
    ) -> Resolution:
        """Add a WeChat identity to the viewer's account, once the viewer is re-authenticated
        (``gateway.rights.factors``; ``reauthenticated`` says how, for the audit trail).

        Identities already on another account are a conflict, unless WeChat's own answer links
        that account to the viewer's (the viewer holds one of the keys, say the unionid, and the
        other account holds the rest): then they are one person and merge.
        """
        app = self._checked(app_key, code, state)
        facts = await self.exchange(app, code)
        if facts.snapshot:
            raise SnapshotUser("A snapshot-page visitor cannot be linked.")
        keys = identity_keys(app, facts)
        try:
            return await self._link(viewer, app, facts, keys, client, reauthenticated)
        except MergeRefused as refused:
            await self._record_refused_merge(app, client, refused)
            raise IdentityConflict() from None
        except AccountGone:  # the viewer's account was erased meanwhile: its token is void
            raise NotLoggedIn("Your account was deleted; log in again.") from None

    async def _link(
        self,
        viewer: Viewer,
        app: AppConfig,
        facts: WechatFacts,
        keys: list[IdentityKey],
        client: ClientInfo,
        reauthenticated: str,
    ) -> Resolution:
        async def work(s: UnitOfWork) -> Resolution:
            owners = await self._accounts.owners(s, keys)
            if owners - {viewer.account_id} and viewer.account_id not in owners:
                raise IdentityConflict()
            if not owners:
                added = await self._accounts.link(s, viewer.account_id, keys, app.key)
                resolution = Resolution(viewer.account_id, False, added)
                await self._keep_session_key(s, app, facts)
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
                reauthenticated=reauthenticated,
            )
            return resolution

        return await self._db.run_in_transaction(work)

    @declares(UnknownApp, InvalidInput, InvalidState, WECHAT_CALL, SnapshotUser)
    async def identities_of_code(
        self, app_key: str, code: str, state: str | None = None
    ) -> list[IdentityView]:
        """The known identities of a fresh code's WeChat user, with their accounts and when
        they were added (re-authentication: proof that the person holding the session still
        controls the WeChat account). No account, identity or session key is written."""
        app = self._checked(app_key, code, state)
        facts = await self.exchange(app, code)
        if facts.snapshot:
            raise SnapshotUser()
        found = await self._accounts.identities_by_key(identity_keys(app, facts))
        return [identity for identity in found if identity is not None]

    async def exchange(self, app: AppConfig, code: str) -> WechatFacts:
        """One upstream exchange per (app, code), however often and wherever the client sends
        it: collapsed in this process, and across processes when Redis is configured."""
        key = code_key(app.appid, code)

        async def once() -> WechatFacts:
            return await self._exchange_once(app, code)

        async def shared() -> WechatFacts:
            assert self._shared is not None
            return await self._shared.run(key.hex(), once, _remember)

        async with waiting_upstream():  # no slot held while WeChat answers (gateway.limits)
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
        if facts.nickname is None:  # a profile to keep takes the transactional path
            at_once = await self._at_once(app, facts, client)
            if at_once is not None:
                return at_once
        try:
            try:
                return await self._sign_in_transaction(app, facts, client)
            except AccountGone as gone:  # erased meanwhile: the person is new (README)
                return await self._sign_in_transaction(app, facts, client, gone.account_id)
        except MergeRefused as refused:
            await self._record_refused_merge(app, client, refused)
            LOGINS.labels(f"wechat_{app.kind}", AccountDisabled.code).inc()
            raise AccountDisabled() from None

    async def _sign_in_transaction(
        self,
        app: AppConfig,
        facts: WechatFacts,
        client: ClientInfo,
        erased: uuid.UUID | None = None,
    ) -> LoginOutcome:
        """The reference path: resolve (create, attach, merge), keep the profile, open the
        session, in one transaction. After a first attempt reached an ``erased`` account,
        whatever of the person was left on it goes first."""

        async def work(s: UnitOfWork) -> tuple[Resolution, IssuedTokens]:
            if erased is not None:
                await self._accounts.release_erased(s, erased)
            resolution = await self.resolve(s, app, facts, client)
            await self._accounts.keep_profile(
                s, resolution.account_id, facts.nickname, facts.avatar_url
            )
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
            return resolution, tokens

        resolution, tokens = await self._db.run_in_transaction(work)
        LOGINS.labels(f"wechat_{app.kind}", "new" if resolution.is_new else "ok").inc()
        return LoginOutcome(tokens, resolution.is_new, resolution.merged)

    async def _at_once(
        self, app: AppConfig, facts: WechatFacts, client: ClientInfo
    ) -> LoginOutcome | None:
        """A returning or new user's login in one statement (``Sessions.start_at_once``);
        ``None`` when the login has more to do (a new key for a known account, a merge, a
        disabled account, a pending deletion) and the transactional path must do it all."""
        key = SessionKey(app.appid, facts.openid, facts.session_key) if facts.session_key else None
        keys = identity_keys(app, facts)
        door = f"wechat_{app.kind}"
        signed_in = await self._sessions.start_at_once(
            keys, key, app.key, client, door=door, linked=[]
        )
        if signed_in is None:
            return None
        tokens, is_new = signed_in
        LOGINS.labels(door, "new" if is_new else "ok").inc()
        return LoginOutcome(tokens, is_new_account=is_new)

    async def resolve(
        self, s: UnitOfWork, app: AppConfig, facts: WechatFacts, client: ClientInfo | None
    ) -> Resolution:
        """Find or create the account; a unionid WeChat vouches for may merge accounts."""
        resolution = await self._accounts.resolve(
            s, identity_keys(app, facts), app.key, merge_reason="unionid", client=client
        )
        await self._keep_session_key(s, app, facts)
        return resolution

    async def _keep_session_key(self, s: UnitOfWork, app: AppConfig, facts: WechatFacts) -> None:
        if facts.session_key:
            await self._accounts.keep_session_key(s, app.appid, facts.openid, facts.session_key)

    async def _record_refused_merge(
        self, app: AppConfig, client: ClientInfo, refused: MergeRefused
    ) -> None:
        """Why the person's WeChat proved two accounts one and nothing merged: on each disabled
        account's trail (``gateway accounts show``), in a transaction of its own (the login's
        was rolled back)."""
        log.info("merge refused app=%s: a disabled account is involved", app.key)

        async def work(s: UnitOfWork) -> None:
            for account_id in sorted(refused.disabled):
                others = sorted(str(a) for a in refused.account_ids - {account_id})
                record(
                    s,
                    "merge_refused",
                    client,
                    account_id=account_id,
                    app_key=app.key,
                    reason="account_disabled",
                    accounts=others,
                )

        await self._db.run_in_transaction(work)

    async def _record_failure(self, app: AppConfig, client: ClientInfo, exc: GatewayError) -> None:
        errcode = exc.errcode
        log.info("wechat login refused app=%s code=%s errcode=%s", app.key, exc.code, errcode)
        LOGINS.labels(f"wechat_{app.kind}", exc.code).inc()

        async def work(s: UnitOfWork) -> None:
            record(
                s,
                "login_failed",
                client,
                app_key=app.key,
                door=f"wechat_{app.kind}",
                reason=exc.code,
                errcode=errcode,
            )

        await self._db.run_in_transaction(work)
