"""``loginByPhoneCode``: the one-tap "log in with my phone number" of a shop's first screen.

The caller is the account of the mini-program's silent login (its bearer token); the code is
the phone button's. A phone nobody holds joins that account (the person signs up with their
number) and the answer is a login: a new session, which replaces the silent login's. A phone
another account holds is ``PHONE_CONFLICT`` and nothing changes: the caller stays the account
and the session it was. Numbers are recycled by carriers, so a phone on another account is
never a reason to move the caller there or to merge the two; an app offers the person another
way in to that account (its WeChat, a password) or support.

Binding a phone adds a way in, so the rule of ``gateway.rights.reauthentication`` holds here
as it does for ``bindPhoneNumber``: the caller's login must be less than
``[accounts] reauthentication_seconds`` old. A silent login at launch is; an older one answers
``REAUTHENTICATION_REQUIRED`` before the phone code is exchanged (it stays usable), and the
client logs in silently again (``wx.login`` + ``loginByCode``) and sends the same code. No
exemption for a first phone: a stolen access token could otherwise plant its holder's number.
"""

from __future__ import annotations

from gateway.audit import ClientInfo, record
from gateway.errors import InvalidInput, declares
from gateway.miniprogram.service import MiniProgramSessions
from gateway.rights.reauthentication import Proof, Reauthentication
from gateway.sessions.model import IssuedTokens, Viewer
from gateway.sessions.service import Sessions
from gateway.store.db import Database, UnitOfWork
from gateway.wechat_login.service import LoginOutcome, WechatLogin


class PhoneLogin:
    def __init__(
        self,
        db: Database,
        reauthentication: Reauthentication,
        wechat_login: WechatLogin,
        miniprogram: MiniProgramSessions,
        sessions: Sessions,
    ) -> None:
        self._db = db
        self._rule = reauthentication
        self._wechat_login = wechat_login
        self._miniprogram = miniprogram
        self._sessions = sessions

    @declares(
        WechatLogin.app,
        InvalidInput,
        MiniProgramSessions.app_of,
        Reauthentication.confirm,
        MiniProgramSessions.verified_phone,
        MiniProgramSessions.link_phone,
        Sessions.start,
    )
    async def login(
        self, viewer: Viewer, app_key: str, code: str, client: ClientInfo
    ) -> LoginOutcome:
        """``is_new_account`` is True when this login bound the phone (the sign-up), False
        when the phone was the caller's already."""
        if self._wechat_login.app(app_key).key != viewer.app_key:
            raise InvalidInput("app", "The bearer token is another app's: log in to this one.")
        app = self._miniprogram.app_of(viewer)
        method = await self._rule.confirm(viewer, Proof())
        phone = await self._miniprogram.verified_phone(app, code)

        async def work(s: UnitOfWork) -> tuple[bool, IssuedTokens]:
            linked = await self._miniprogram.link_phone(s, viewer, app, phone, client, method)
            tokens = await self._sessions.start(s, viewer.account_id, app.key, client)
            await self._sessions.end(s, viewer)
            record(
                s,
                "login",
                client,
                account_id=viewer.account_id,
                session_id=tokens.session_id,
                app_key=app.key,
                door="phone",
                replaced=str(viewer.session_id),
            )
            return linked, tokens

        linked, tokens = await self._db.run_in_transaction(work)
        return LoginOutcome(tokens, is_new_account=linked)
