"""``updateProfile`` and the avatar upload: what a person sets about themselves since WeChat
stopped handing real names and pictures to mini-programs (they come from
``<input type="nickname">`` and ``<button open-type="chooseAvatar">`` now).

A nickname is at most 64 characters with no control characters; with ``[profile]
msg_sec_check = true`` WeChat's content check reads it first (the author's openid in the
session's mini-program) and a ``risky`` verdict is ``CONTENT_REJECTED`` (``review`` passes:
WeChat leaves that to the app). An avatar is uploaded first (``upload_avatar``: re-encoded,
stored under a random id), then chosen by that id; its URL never changes its bytes.
"""

from __future__ import annotations

import logging
import unicodedata
import uuid
from dataclasses import dataclass

from gateway.accounts.service import AccountGraph, ProfileField
from gateway.audit import ClientInfo, record
from gateway.config import AppKind, GatewayConfig
from gateway.errors import (
    WECHAT_CALL,
    ContentRejected,
    ImageTooLarge,
    InvalidImage,
    InvalidInput,
    NotFound,
    SessionExpired,
    UnsupportedAppKind,
    declares,
)
from gateway.profiles.images import EXTENSIONS, CleanImage, ImageWorkers
from gateway.sessions.model import Viewer
from gateway.store.db import Database, UnitOfWork
from gateway.wechat.app_token import AppTokens
from gateway.wechat.client import WeChatClient

log = logging.getLogger(__name__)

MAX_NICKNAME = 64
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})  # controls, surrogates, line breaks


@dataclass(frozen=True)
class UploadedAvatar:
    id: str
    url: str


def checked_nickname(nickname: str) -> str | None:
    """The nickname as stored (trimmed; empty clears it), or ``InvalidInput``."""
    text = nickname.strip()
    if len(text) > MAX_NICKNAME:
        raise InvalidInput(
            "nickname", "A nickname is at most %(count)s characters.", count=MAX_NICKNAME
        )
    if any(unicodedata.category(c) in _REFUSED_CATEGORIES for c in text):
        raise InvalidInput("nickname", "A nickname may not hold control characters.")
    return text or None


def avatar_path(avatar_id: uuid.UUID, media_type: str) -> str:
    return f"/avatars/{avatar_id.hex}.{EXTENSIONS[media_type]}"


class Profiles:
    def __init__(
        self,
        config: GatewayConfig,
        db: Database,
        accounts: AccountGraph,
        wechat: WeChatClient,
        app_tokens: AppTokens,
        images: ImageWorkers,
    ) -> None:
        self._config = config
        self._db = db
        self._accounts = accounts
        self._wechat = wechat
        self._app_tokens = app_tokens
        self._images = images

    def origin(self, request_origin: str) -> str:
        """Where phones fetch avatars: ``[profile] public_url``, else the request's origin."""
        return self._config.profile.public_url or request_origin.rstrip("/")

    @declares(
        InvalidInput, NotFound, ContentRejected, UnsupportedAppKind, SessionExpired, WECHAT_CALL
    )
    async def update(
        self,
        viewer: Viewer,
        nickname: str | None,
        avatar: str | None,
        origin: str,
        client: ClientInfo,
    ) -> None:
        """``None`` leaves a field as it is; an empty string clears it."""
        changes: dict[ProfileField, str | None] = {}
        if nickname is not None:
            changes["nickname"] = checked_nickname(nickname)
        avatar_id = _avatar_id(avatar) if avatar else None
        if changes.get("nickname") and self._config.profile.msg_sec_check:
            await self._check_text(viewer, changes["nickname"] or "")

        async def work(s: UnitOfWork) -> None:
            changed = dict(changes)  # this run's own: a run again starts from the request's
            if avatar_id is not None:
                media_type = await self._accounts.choose_avatar(s, viewer.account_id, avatar_id)
                if media_type is None:
                    raise NotFound(
                        "No such upload of yours: upload the picture first.", field="avatar"
                    )
                changed["avatar_url"] = self.origin(origin) + avatar_path(avatar_id, media_type)
            elif avatar == "":
                await self._accounts.forget_avatars(s, viewer.account_id)
                changed["avatar_url"] = None
            await self._accounts.set_profile(s, viewer.account_id, changed)
            record(
                s,
                "profile_update",
                client,
                account_id=viewer.account_id,
                session_id=viewer.session_id,
                app_key=viewer.app_key,
                fields=sorted(changed),
            )

        await self._db.run_in_transaction(work)

    async def _check_text(self, viewer: Viewer, text: str) -> None:
        """WeChat's msg_sec_check on the viewer's own openid in the session's mini-program."""
        app = self._config.app(viewer.app_key)
        if app is None or app.kind != AppKind.MINIPROGRAM:
            raise UnsupportedAppKind(
                "Nicknames are checked by WeChat's content check: set it from the mini-program."
            )
        keys = await self._accounts.session_keys(viewer.account_id, app.appid)
        if keys is None:
            raise SessionExpired()
        verdict = await self._app_tokens.call(
            app, lambda token: self._wechat.msg_sec_check(token, keys.openid, text)
        )
        if verdict.risky:
            log.info("nickname refused by msg_sec_check app=%s label=%s", app.key, verdict.label)
            raise ContentRejected()

    @declares(ImageTooLarge, InvalidImage)
    async def upload_avatar(self, viewer: Viewer, data: bytes, origin: str) -> UploadedAvatar:
        """Re-encode and keep an upload of the viewer's; it becomes the avatar when
        ``update`` names its id (a newer upload replaces one never chosen)."""
        clean = await self._images.reencode(data)
        avatar_id = await self._db.run_in_transaction(
            lambda s: self._accounts.add_avatar(s, viewer.account_id, clean.media_type, clean.data)
        )
        url = self.origin(origin) + avatar_path(avatar_id, clean.media_type)
        return UploadedAvatar(avatar_id.hex, url)

    async def avatar(self, name: str) -> CleanImage | None:
        """The picture behind ``<id>.<extension>``; None for anything else."""
        stem, _, extension = name.partition(".")
        try:
            avatar_id = uuid.UUID(hex=stem)
        except ValueError:
            return None
        if stem != avatar_id.hex:  # one URL per picture
            return None
        found = await self._accounts.avatar(avatar_id)
        if found is None or EXTENSIONS.get(found[0]) != extension:
            return None
        return CleanImage(*found)


def _avatar_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(hex=value.rpartition("/")[2].partition(".")[0])
    except ValueError:
        raise InvalidInput(
            "avatar", "avatar is the `avatar` (or `url`) an upload answered."
        ) from None
