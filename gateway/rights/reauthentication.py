"""Re-authentication: the one rule for deleting the account and for adding a way into it
(``gateway.rights.factors``).

The viewer is confirmed by a login less than ``[accounts] reauthentication_seconds`` old, or by
a proof: the account's password, or a fresh code of one of its WeChat identities. A proof
counts only through a factor that predates both the current session and the window: a password
or WeChat identity added by this session, or just now, confirms nothing. Otherwise whoever holds
a stolen access token could add a factor of their own and confirm themselves with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.config import GatewayConfig
from gateway.credentials.service import Passwords
from gateway.errors import N_, InvalidCredentials, InvalidInput, ReauthenticationRequired, declares
from gateway.sessions.model import Viewer
from gateway.store.models import utcnow
from gateway.wechat_login.service import WechatLogin

TOO_NEW = N_(
    "This password or WeChat was added too recently to confirm it is you: log in again, or "
    "confirm with a way in the account had before this login."
)


@dataclass(frozen=True)
class Proof:
    """What the person sends to re-authenticate: one of these, or nothing after a recent
    login."""

    password: str | None = None
    app: str | None = None
    code: str | None = None
    state: str | None = None


@dataclass(frozen=True)
class _Factor:
    method: str
    added_at: datetime


class Reauthentication:
    def __init__(
        self, config: GatewayConfig, passwords: Passwords, wechat_login: WechatLogin
    ) -> None:
        self._config = config
        self._passwords = passwords
        self._wechat_login = wechat_login

    @declares(
        InvalidInput,
        ReauthenticationRequired,
        Passwords.reauthenticate,
        InvalidCredentials,
        WechatLogin.identities_of_code,
    )
    async def confirm(self, viewer: Viewer, proof: Proof) -> str:
        """How the viewer is confirmed (``recent_login``, ``password``, ``wechat_code``: for
        the audit trail). A wrong proof is ``InvalidCredentials`` even after a recent login."""
        factor = await self._factor(viewer, proof)
        if self._recent(viewer):
            return factor.method if factor else "recent_login"
        if factor is None:
            raise ReauthenticationRequired()
        if not self._predates(viewer, factor.added_at):
            raise ReauthenticationRequired(TOO_NEW)
        return factor.method

    async def _factor(self, viewer: Viewer, proof: Proof) -> _Factor | None:
        """The factor the proof shows, with when it was added to the account; None for none."""
        if proof.password:
            added_at = await self._passwords.reauthenticate(viewer, proof.password)
            return _Factor("password", added_at)
        if not (proof.code or proof.app):
            return None
        if not (proof.code and proof.app):
            raise InvalidInput("code", "Send both app and code.")
        found = await self._wechat_login.identities_of_code(proof.app, proof.code, proof.state)
        if not found or {i.account_id for i in found} != {viewer.account_id}:
            raise InvalidCredentials("This WeChat login is not this account's.")
        # the oldest of its identities: a unionid from long ago vouches for a new app's openid
        return _Factor("wechat_code", min(i.created_at for i in found))

    def _window(self) -> timedelta:
        return timedelta(seconds=self._config.accounts.reauthentication_seconds)

    def _recent(self, viewer: Viewer) -> bool:
        created = viewer.session_created_at
        return created is not None and utcnow() - created <= self._window()

    def _predates(self, viewer: Viewer, added_at: datetime) -> bool:
        """Added before this login (a login that brings its own identities, such as a first
        sight of an app, counts as before) and longer ago than the window."""
        started = viewer.session_created_at
        before_session = started is None or added_at <= started
        return before_session and added_at <= utcnow() - self._window()
