"""What a logged-in mini-program user can do with their WeChat session: bind the unionid from
open data, check whether WeChat still holds the session_key, bind a phone number.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.accounts.model import AccountConflict, IdentityKey, Resolution, WechatSessionKeys
from gateway.accounts.service import AccountGraph
from gateway.audit import ClientInfo, record
from gateway.config import AppConfig, AppKind, GatewayConfig
from gateway.errors import (
    N_,
    WECHAT_CALL,
    GatewayError,
    InvalidEncryptedData,
    InvalidInput,
    NoUnionid,
    OpenidMismatch,
    PhoneConflict,
    SessionExpired,
    SignatureMismatch,
    UnsupportedAppKind,
    WatermarkMismatch,
    declares,
)
from gateway.sessions.model import Viewer
from gateway.store.db import Database, UnitOfWork
from gateway.wechat import crypto
from gateway.wechat.app_token import AppTokens
from gateway.wechat.client import WeChatClient
from gateway.wechat.codes import check_code
from gateway.wechat.errors import WeChatError
from gateway.wechat_login.facts import WechatFacts
from gateway.wechat_login.service import WechatLogin

log = logging.getLogger(__name__)
_MAX_ENCRYPTED = 16 * 1024


@dataclass(frozen=True)
class BindOutcome:
    account_id: uuid.UUID
    merged: bool
    linked: bool


@dataclass(frozen=True)
class SessionCheck:
    wechat_session_valid: bool | None


class MiniProgramSessions:
    def __init__(
        self,
        config: GatewayConfig,
        db: Database,
        accounts: AccountGraph,
        wechat: WeChatClient,
        app_tokens: AppTokens,
        login: WechatLogin,
    ) -> None:
        self._config = config
        self._db = db
        self._accounts = accounts
        self._wechat = wechat
        self._app_tokens = app_tokens
        self._login = login

    @declares(UnsupportedAppKind)
    def app_of(self, viewer: Viewer) -> AppConfig:
        """The viewer's mini-program (the session's app); other apps have no WeChat session."""
        app = self._config.app(viewer.app_key)
        if app is None or app.kind != AppKind.MINIPROGRAM:
            raise UnsupportedAppKind()
        return app

    async def _wechat_session(self, app: AppConfig, viewer: Viewer) -> WechatSessionKeys:
        """The viewer's openid in ``app`` and the session keys WeChat gave for it."""
        found = await self._accounts.session_keys(viewer.account_id, app.appid)
        if found is None:
            raise SessionExpired()
        return found

    @declares(
        UnsupportedAppKind,
        InvalidInput,
        NoUnionid,
        SessionExpired,
        InvalidEncryptedData,
        WatermarkMismatch,
        OpenidMismatch,
        SignatureMismatch,
    )
    async def bind_unionid(
        self,
        viewer: Viewer,
        encrypted_data: str,
        iv: str,
        raw_data: str | None,
        signature: str | None,
        client: ClientInfo,
    ) -> BindOutcome:
        app = self.app_of(viewer)
        if len(encrypted_data) > _MAX_ENCRYPTED or len(iv) > 64:
            raise InvalidInput("encryptedData", "encryptedData or iv is too long.")
        if not app.platform:
            raise NoUnionid(
                "App %(app)s is not bound to an open platform: WeChat gives it no unionid.",
                app=repr(app.key),
            )
        keys = await self._wechat_session(app, viewer)
        openid = keys.openid
        data, session_key = await self._open(app, keys, encrypted_data, iv)
        try:
            crypto.verify_open_data(data, appid=app.appid, openid=openid)
            if raw_data is not None or signature is not None:
                crypto.verify_signature(raw_data or "", session_key, signature or "")
        except crypto.OpenDataError as exc:
            raise _OPEN_DATA[exc.code]() from None
        unionid = data.get("unionId")
        if not isinstance(unionid, str) or not unionid:
            raise NoUnionid()
        return await self._link_unionid(app, viewer, openid, unionid, data, client)

    async def _open(
        self, app: AppConfig, keys: WechatSessionKeys, encrypted_data: str, iv: str
    ) -> tuple[Mapping[str, object], str]:
        """The decrypted data and the key that opened it: the latest, or the previous one for
        fresh data (fetched just before a new wx.login)."""
        try:
            return crypto.decrypt_open_data(keys.current, encrypted_data, iv), keys.current
        except crypto.OpenDataError:
            pass
        if keys.previous is not None:
            try:
                data = crypto.decrypt_open_data(keys.previous, encrypted_data, iv)
            except crypto.OpenDataError:
                pass
            else:
                if not _fresh(data):
                    raise SessionExpired(_FETCH_AGAIN)
                return data, keys.previous
        if await self._key_is_stale(app, keys.openid, keys.current):
            raise SessionExpired(_FETCH_AGAIN)
        raise InvalidEncryptedData()

    async def _key_is_stale(self, app: AppConfig, openid: str, session_key: str) -> bool:
        """Ask WeChat: a rotated key looks exactly like tampered data from here."""
        signature = crypto.check_session_signature(session_key)
        try:
            return not await self._app_tokens.call(
                app, lambda token: self._wechat.check_session(token, openid, signature)
            )
        except WeChatError as exc:
            log.warning("checksession failed app=%s code=%s", app.key, exc.code)
            return False

    async def _link_unionid(
        self,
        app: AppConfig,
        viewer: Viewer,
        openid: str,
        unionid: str,
        data: Mapping[str, object],
        client: ClientInfo,
    ) -> BindOutcome:
        facts = WechatFacts(openid, unionid)

        async def work(s: UnitOfWork) -> Resolution:
            resolution = await self._login.resolve(s, app, facts, client)
            nickname, avatar = data.get("nickName"), data.get("avatarUrl")
            await self._accounts.keep_profile(
                s,
                resolution.account_id,
                nickname if isinstance(nickname, str) else None,
                avatar if isinstance(avatar, str) else None,
            )
            record(
                s,
                "bind_unionid",
                client,
                account_id=resolution.account_id,
                session_id=viewer.session_id,
                app_key=app.key,
                merged=resolution.merged,
                linked=bool(resolution.new_identities),
            )
            return resolution

        resolution = await self._db.run_in_transaction(work)
        return BindOutcome(
            resolution.account_id, resolution.merged, bool(resolution.new_identities)
        )

    async def check_session(self, viewer: Viewer) -> SessionCheck:
        app = self._config.app(viewer.app_key)
        if app is None or app.kind != AppKind.MINIPROGRAM:
            return SessionCheck(None)
        try:
            keys = await self._wechat_session(app, viewer)
        except SessionExpired:
            return SessionCheck(False)
        signature = crypto.check_session_signature(keys.current)
        try:
            valid = await self._app_tokens.call(
                app, lambda token: self._wechat.check_session(token, keys.openid, signature)
            )
        except WeChatError as exc:
            log.warning("checksession failed app=%s code=%s", app.key, exc.code)
            return SessionCheck(None)
        return SessionCheck(valid)

    @declares(UnsupportedAppKind, InvalidInput, WECHAT_CALL, WatermarkMismatch, PhoneConflict)
    async def bind_phone(
        self, viewer: Viewer, code: str, client: ClientInfo, *, reauthenticated: str
    ) -> bool:
        """True when the phone was newly linked; a phone on another account is a conflict.
        Only once the viewer is re-authenticated (``gateway.rights.factors``; a launch login is
        recent): ``reauthenticated`` says how, for the audit trail."""
        app = self.app_of(viewer)
        phone = await self.verified_phone(app, code)
        return await self._db.run_in_transaction(
            lambda s: self.link_phone(s, viewer, app, phone, client, reauthenticated)
        )

    @declares(InvalidInput, WECHAT_CALL, WatermarkMismatch)
    async def verified_phone(self, app: AppConfig, code: str) -> str:
        """The phone number (E.164) WeChat verified for a phone button's ``code``."""
        check_code(code)
        phone = await self._app_tokens.call(
            app, lambda token: self._wechat.phone_number(token, code)
        )
        if phone.watermark_appid and phone.watermark_appid != app.appid:
            raise WatermarkMismatch()
        return phone.e164

    @declares(PhoneConflict)
    async def link_phone(
        self,
        s: UnitOfWork,
        viewer: Viewer,
        app: AppConfig,
        phone: str,
        client: ClientInfo,
        reauthenticated: str,
    ) -> bool:
        """The one rule for a phone joining an account, in the caller's unit of work (a phone
        login opens its session in the same one): linked to the viewer's account unless another
        account holds it (``PhoneConflict``: numbers are recycled, so never a move or a merge);
        True when newly linked. Audited as ``bind_phone``."""
        try:
            added = await self._accounts.link(
                s, viewer.account_id, [IdentityKey.phone(phone)], app.key
            )
        except AccountConflict:
            raise PhoneConflict() from None
        record(
            s,
            "bind_phone",
            client,
            account_id=viewer.account_id,
            session_id=viewer.session_id,
            app_key=app.key,
            linked=bool(added),
            reauthenticated=reauthenticated,
        )
        return bool(added)


WATERMARK_FRESH_SECONDS = 300
"""Data opened with the previous session_key is taken only when WeChat made it this recently:
older data could be replayed from a session the user has since left."""

_FETCH_AGAIN = N_(
    "This data was sealed with a WeChat session that has since changed: call wx.login (and "
    "loginByCode) before wx.getUserInfo, then send the new data."
)


def _fresh(data: Mapping[str, object], now: float | None = None) -> bool:
    watermark = data.get("watermark")
    stamp = watermark.get("timestamp") if isinstance(watermark, Mapping) else None
    if not isinstance(stamp, int | float):
        return False
    return abs((now if now is not None else time.time()) - stamp) <= WATERMARK_FRESH_SECONDS


_OPEN_DATA: dict[str, type[GatewayError]] = {
    e.code: e for e in (InvalidEncryptedData, WatermarkMismatch, OpenidMismatch, SignatureMismatch)
}
