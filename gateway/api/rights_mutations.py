"""People's rights: deleting one's own account (re-authenticated; maybe after a cooling-off)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.api import results
from gateway.api.mutations import ClientInput, client_info
from gateway.api.types import Info
from gateway.errors import InvalidInput, NotLoggedIn
from gateway.rights.reauthentication import Proof
from gateway.rights.service import Rights


@strawberry.input(
    description="Confirm it is you before adding or removing a way into your account, as for "
    "deleteAccount: `password`, or `app` and a fresh `code` of one of your WeChat apps (with "
    "`state` for a WeChat authorization). Not needed within a few minutes of logging in. "
    "A password or WeChat added by this login is no proof."
)
class ReauthenticationInput:
    password: str | None = None
    app: str | None = None
    code: str | None = None
    state: str | None = None


def proof_of(given: ReauthenticationInput | None) -> Proof:
    if given is None:
        return Proof()
    return Proof(given.password, given.app, given.code, given.state)


@strawberry.input(
    description="Confirm it is you with one of: `password`; `app` and a fresh `code` from "
    "wx.login (or a WeChat authorization, with its `state`) of one of your WeChat apps; or "
    "nothing, within a few minutes of logging in. A password or WeChat added by this login "
    "is no proof."
)
class DeleteAccountInput:
    password: str | None = None
    app: str | None = None
    code: str | None = None
    state: str | None = None
    client: ClientInput | None = None


@strawberry.type(
    description="The deletion is requested. With no cooling-off period `effectiveAt` equals "
    "`deletedAt` and the account is gone; otherwise it is erased at `effectiveAt` unless you "
    "log in again before then. Every session is logged out now."
)
class DeleteAccountSuccess:
    deleted_at: datetime
    effective_at: datetime
    pending: bool = strawberry.field(description="True during the cooling-off period.")


@strawberry.type
class RightsMutation:
    @results.mutation(
        "DeleteAccountResult",
        DeleteAccountSuccess,
        NotLoggedIn,
        InvalidInput,
        Rights.delete_account,
        description="Delete your account (PIPL art. 47): identities, credentials, phone, "
        "profile and sessions are erased.",
    )
    async def delete_account(
        self, info: Info, input: DeleteAccountInput | None = None
    ) -> DeleteAccountSuccess:
        viewer = await info.context.require_viewer()
        given = input or DeleteAccountInput()
        client = client_info(info, given.client)
        proof = Proof(given.password, given.app, given.code, given.state)
        deletion = await info.context.services.rights.delete_account(viewer, proof, client)
        return DeleteAccountSuccess(
            deleted_at=deletion.requested_at,
            effective_at=deletion.effective_at,
            pending=not deletion.done,
        )
