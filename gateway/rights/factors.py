"""Adding a way into the account (a password, a WeChat identity, a phone number) or removing
one, each behind the same re-authentication as deleting it (``gateway.rights.reauthentication``),
so that a stolen access token can neither plant a factor of its holder's nor take away the
owner's: unlinking the owner's WeChat or username leaves the holder's way in as the account's
only one, which is a takeover by subtraction.

Changing the password is not here: ``Passwords.change_password`` asks for the current password,
the rule's own password proof, and an attacker who knows it gains nothing by changing it.
"""

from __future__ import annotations

import uuid

from gateway.accounts.model import Resolution
from gateway.accounts.service import AccountGraph
from gateway.audit import ClientInfo
from gateway.credentials.service import Passwords
from gateway.errors import declares
from gateway.miniprogram.service import MiniProgramSessions
from gateway.rights.reauthentication import Proof, Reauthentication
from gateway.sessions.model import Viewer
from gateway.wechat_login.service import WechatLogin


class Factors:
    def __init__(
        self,
        reauthentication: Reauthentication,
        passwords: Passwords,
        wechat_login: WechatLogin,
        miniprogram: MiniProgramSessions,
        accounts: AccountGraph,
    ) -> None:
        self._rule = reauthentication
        self._accounts = accounts
        self._passwords = passwords
        self._wechat_login = wechat_login
        self._miniprogram = miniprogram

    @declares(Passwords.bind, Reauthentication.confirm)
    async def bind_credential(
        self, viewer: Viewer, proof: Proof, username: str, password: str, client: ClientInfo
    ) -> None:
        method = await self._rule.confirm(viewer, proof)
        await self._passwords.bind(viewer, username, password, client, reauthenticated=method)

    @declares(WechatLogin.link, Reauthentication.confirm)
    async def link_wechat(
        self,
        viewer: Viewer,
        proof: Proof,
        app_key: str,
        code: str,
        client: ClientInfo,
        state: str | None = None,
    ) -> Resolution:
        method = await self._rule.confirm(viewer, proof)
        return await self._wechat_login.link(
            viewer, app_key, code, client, state, reauthenticated=method
        )

    @declares(MiniProgramSessions.bind_phone, Reauthentication.confirm)
    async def bind_phone(self, viewer: Viewer, proof: Proof, code: str, client: ClientInfo) -> bool:
        method = await self._rule.confirm(viewer, proof)
        return await self._miniprogram.bind_phone(viewer, code, client, reauthenticated=method)

    @declares(AccountGraph.unlink, Reauthentication.confirm)
    async def unlink_identity(
        self, viewer: Viewer, proof: Proof, identity_id: uuid.UUID, client: ClientInfo
    ) -> None:
        """Confirmed before the identity is even looked up: a stale token learns nothing about
        which ids are the account's."""
        method = await self._rule.confirm(viewer, proof)
        await self._accounts.unlink(viewer, identity_id, client, reauthenticated=method)
