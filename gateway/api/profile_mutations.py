"""Mutations for what a person sets about themselves: the nickname and the avatar."""

from __future__ import annotations

import strawberry

from gateway.api import results
from gateway.api.mutations import ClientInput, client_info
from gateway.api.types import Account, Info, changed_account
from gateway.errors import InvalidInput, NotLoggedIn
from gateway.profiles.service import Profiles


@strawberry.input(description="Omit a field (or send null) to leave it; an empty string clears it.")
class UpdateProfileInput:
    nickname: str | None = strawberry.field(
        default=None,
        description='From <input type="nickname">: at most 64 characters, no control '
        "characters; checked by WeChat's msg_sec_check where the gateway is configured to.",
    )
    avatar: str | None = strawberry.field(
        default=None,
        description="The `avatar` (or `url`) that POST /avatars answered for the picture "
        'from <button open-type="chooseAvatar">.',
    )
    client: ClientInput | None = None


@strawberry.type
class UpdateProfileSuccess:
    account: Account


@strawberry.type
class ProfileMutation:
    @results.mutation(
        "UpdateProfileResult",
        UpdateProfileSuccess,
        NotLoggedIn,
        InvalidInput,
        Profiles.update,
        description="Set your nickname and avatar (the avatar uploaded first to POST /avatars).",
    )
    async def update_profile(self, info: Info, input: UpdateProfileInput) -> UpdateProfileSuccess:
        viewer = await info.context.require_viewer()
        request = info.context.request
        await info.context.services.profiles.update(
            viewer,
            input.nickname,
            input.avatar,
            str(request.base_url),
            client_info(info, input.client),
        )
        return UpdateProfileSuccess(account=await changed_account(info, viewer.account_id))
