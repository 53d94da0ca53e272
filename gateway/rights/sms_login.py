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

from gateway.accounts.model import AccountGone, IdentityKey
from gateway.accounts.service import AccountGraph
from gateway.audit import ClientInfo, record
from gateway.config import AppConfig, GatewayConfig
from gateway.errors import N_, InvalidCode, InvalidCredentials, UnknownApp, declares
from gateway.metrics import LOGINS
from gateway.miniprogram.service import MiniProgramSessions
from gateway.rights.reauthentication import Proof, Reauthentication
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
        try:
            phone = await self._codes.redeem(raw_phone, Purpose.LOGIN, code)
        except InvalidCode:
            await self._failed(app, client, InvalidCode.code)
            raise
        try:
            return await self._open(app, phone, client)
        except InvalidCredentials:
            await self._failed(app, client, InvalidCredentials.code)
            raise

    async def _open(self, app: AppConfig, phone: str, client: ClientInfo) -> LoginOutcome:
        """Find (or create) the number's account and open its session, in one transaction."""
        keys = [IdentityKey.phone(phone)]
        async with self._db.transaction() as s:
            if not self._config.sms.signup and not await self._accounts.owners(s, keys):
                raise InvalidCredentials(NO_ACCOUNT)
            try:
                resolution = await self._accounts.resolve(s, keys, app.key)
                tokens = await self._sessions.start(s, resolution.account_id, app.key, client)
            except AccountGone:  # erased while this login ran: the number is free again
                raise InvalidCredentials(NO_ACCOUNT) from None
            _audit_login(s, app, tokens, client, resolution.is_new)
        LOGINS.labels("sms", "ok").inc()
        return LoginOutcome(tokens, is_new_account=resolution.is_new)

    async def _failed(self, app: AppConfig, client: ClientInfo, reason: str) -> None:
        """Audit a refused SMS login, as a refused password login is: without the account
        (a wrong code says nothing about whose number it is)."""
        LOGINS.labels("sms", reason).inc()
        async with self._db.transaction() as s:
            record(s, "login_failed", client, app_key=app.key, door="sms", reason=reason)

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
        async with self._db.transaction() as s:
            return await self._miniprogram.link_phone(s, viewer, app, phone, client, method)


def _audit_login(
    s: UnitOfWork, app: AppConfig, tokens: IssuedTokens, client: ClientInfo, new: bool
) -> None:
    record(
        s,
        "register" if new else "login",
        client,
        account_id=tokens.account_id,
        session_id=tokens.session_id,
        app_key=app.key,
        door="sms",
    )
