"""Logging in with a phone number and an SMS code (``loginBySmsCode``), and binding a number
to the logged-in account with one (``bindPhoneBySms``).

The number is one identity of the account graph (``IdentityKey.phone``), whoever proved it: a
number bound with the mini-program's phone button logs in by SMS to that same account, and a
number proved by SMS joins an account by the one rule of ``MiniProgramSessions.link_phone``
(a number on another account is ``PHONE_CONFLICT``, never a move: numbers are recycled).

Binding adds a way in, so ``bindPhoneBySms`` asks what ``bindPhoneNumber`` asks
(``gateway.rights.reauthentication``): the code proves the phone, not the account holder. The
rule is checked before the code is redeemed, so a refusal leaves the code usable.
"""

from __future__ import annotations

import uuid

from gateway.accounts.model import AccountGone, IdentityKey, Resolution
from gateway.accounts.service import AccountGraph
from gateway.audit import ClientInfo, record
from gateway.config import AppConfig, GatewayConfig
from gateway.errors import N_, InvalidCode, InvalidCredentials, UnknownApp, declares
from gateway.metrics import LOGINS
from gateway.miniprogram.service import MiniProgramSessions
from gateway.rights.reauthentication import Proof, Reauthentication
from gateway.sessions.browser import BROWSER_APP
from gateway.sessions.model import IssuedTokens, Viewer
from gateway.sessions.service import Sessions
from gateway.sms.codes import Purpose
from gateway.sms.service import SmsCodes
from gateway.store.db import Database, UnitOfWork
from gateway.wechat_login.service import LoginOutcome, WechatLogin

NO_ACCOUNT = N_("No account has this phone number; log in another way and bind it.")


class SmsLogin:
    def __init__(
        self,
        config: GatewayConfig,
        db: Database,
        accounts: AccountGraph,
        sessions: Sessions,
        codes: SmsCodes,
        reauthentication: Reauthentication,
        miniprogram: MiniProgramSessions,
        wechat_login: WechatLogin,
    ) -> None:
        self._config = config
        self._db = db
        self._accounts = accounts
        self._sessions = sessions
        self._codes = codes
        self._rule = reauthentication
        self._miniprogram = miniprogram
        self._wechat_login = wechat_login

    @declares(WechatLogin.app, SmsCodes.redeem, InvalidCredentials, Sessions.start)
    async def login(
        self, app_key: str, raw_phone: str, code: str, client: ClientInfo
    ) -> LoginOutcome:
        """The number's account, or a new one holding it when ``[sms] signup`` allows."""
        app = self._wechat_login.app(app_key)
        phone = await self._redeemed(app.key, raw_phone, code, client)
        try:
            return await self._open(app, phone, client)
        except InvalidCredentials:
            await self._failed(app.key, client, InvalidCredentials.code)
            raise

    @declares(SmsCodes.redeem, InvalidCredentials)
    async def check(self, raw_phone: str, code: str, client: ClientInfo) -> Resolution:
        """``login``'s rules for the hosted login page (``gateway.web.sms``): the account the
        code opens (a new one when ``[sms] signup`` allows), but no API session: the page
        opens a browser's (``sessions.browser``), whose ``web_login`` row audits the login."""
        phone = await self._redeemed(BROWSER_APP, raw_phone, code, client)

        async def work(s: UnitOfWork) -> Resolution:
            resolution = await self._resolved(s, phone, BROWSER_APP)
            if resolution.is_new:
                _audit(s, "register", BROWSER_APP, resolution.account_id, None, client)
            return resolution

        try:
            resolution = await self._db.run_in_transaction(work)
        except InvalidCredentials:
            await self._failed(BROWSER_APP, client, InvalidCredentials.code)
            raise
        LOGINS.labels("sms", "ok").inc()
        return resolution

    async def _redeemed(self, app_key: str, raw_phone: str, code: str, client: ClientInfo) -> str:
        """The number a LOGIN code proves; a wrong code audited as a refused login."""
        try:
            return await self._codes.redeem(raw_phone, Purpose.LOGIN, code)
        except InvalidCode:
            await self._failed(app_key, client, InvalidCode.code)
            raise

    async def _resolved(self, s: UnitOfWork, phone: str, app_key: str) -> Resolution:
        """The number's account, or a new one when sign-up is on (the account stays locked
        against an erasure until ``s`` commits)."""
        keys = [IdentityKey.phone(phone)]
        if not self._config.sms.signup and not await self._accounts.owners(s, keys):
            raise InvalidCredentials(NO_ACCOUNT)
        try:
            return await self._accounts.resolve(s, keys, app_key)
        except AccountGone:  # erased while this login ran: the number is free again
            raise InvalidCredentials(NO_ACCOUNT) from None

    async def _open(self, app: AppConfig, phone: str, client: ClientInfo) -> LoginOutcome:
        """Find (or create) the number's account and open its session, in one transaction."""

        async def work(s: UnitOfWork) -> tuple[Resolution, IssuedTokens]:
            resolution = await self._resolved(s, phone, app.key)
            try:
                tokens = await self._sessions.start(s, resolution.account_id, app.key, client)
            except AccountGone:
                raise InvalidCredentials(NO_ACCOUNT) from None
            event = "register" if resolution.is_new else "login"
            _audit(s, event, app.key, tokens.account_id, tokens.session_id, client)
            return resolution, tokens

        resolution, tokens = await self._db.run_in_transaction(work)
        LOGINS.labels("sms", "ok").inc()
        return LoginOutcome(tokens, is_new_account=resolution.is_new)

    async def _failed(self, app_key: str, client: ClientInfo, reason: str) -> None:
        """Audit a refused SMS login, as a refused password login is: without the account
        (a wrong code says nothing about whose number it is)."""
        LOGINS.labels("sms", reason).inc()

        async def work(s: UnitOfWork) -> None:
            record(s, "login_failed", client, app_key=app_key, door="sms", reason=reason)

        await self._db.run_in_transaction(work)

    @declares(UnknownApp, Reauthentication.confirm, SmsCodes.redeem, MiniProgramSessions.link_phone)
    async def bind(
        self, viewer: Viewer, proof: Proof, raw_phone: str, code: str, client: ClientInfo
    ) -> bool:
        """True when the number was newly linked to the viewer's account."""
        app = self._config.app(viewer.app_key)
        if app is None:  # the session's app left the configuration
            raise UnknownApp()
        method = await self._rule.confirm(viewer, proof)
        phone = await self._codes.redeem(raw_phone, Purpose.BIND, code)
        return await self._db.run_in_transaction(
            lambda s: self._miniprogram.link_phone(s, viewer, app, phone, client, method)
        )


def _audit(
    s: UnitOfWork,
    event: str,
    app_key: str,
    account_id: uuid.UUID,
    session_id: uuid.UUID | None,
    client: ClientInfo,
) -> None:
    record(
        s,
        event,
        client,
        account_id=account_id,
        session_id=session_id,
        app_key=app_key,
        door="sms",
    )
