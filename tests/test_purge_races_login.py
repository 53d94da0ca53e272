"""``purge-due``'s erasure racing the person's logins and a refresh (issue 30, defect 2), on
SQLite and PostgreSQL, in one process (concurrent requests on their own connections).

Each trial: a person logs in, asks for deletion (a cooling-off period), the period is made
over; then ``carry_out_due`` runs while ``loginByCode`` on ``club-mp`` and ``shop-mp`` and a
refresh of the revoked session go in. Either a login came first and cancelled the deletion
(the account lives on, nothing pending, nothing erased), or the erasure came first: then the
erased account holds no identity and no live session, and a login after it found the person
new. Either way the person's next login works and its token is accepted.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlmodel import col

from gateway.accounts.tables import Account, Identity
from gateway.store.models import LoginSession, utcnow
from tests.support.accounts import account_uuid
from tests.support.harness import Configure, Harness, running
from tests.support.rights import delete, login

TRIALS = 6
REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) {
  __typename ... on Error { code } } }"""


@pytest.fixture
async def gw(database_url: str, configure: Configure) -> AsyncIterator[Harness]:
    async with running(configure(database_url, accounts={"deletion_grace_days": 7})) as gw:
        yield gw


async def make_due(gw: Harness, account_id: uuid.UUID) -> None:
    async with gw.app.state.services.db.transaction() as s:
        await s.execute(
            update(Account)
            .where(col(Account.id) == account_id)
            .values(deletion_due_at=utcnow() - timedelta(seconds=1))
        )


async def state_of(gw: Harness, account_id: uuid.UUID) -> tuple[str, bool, int, int]:
    """Status, deletion pending, identities, live sessions."""
    live = (
        col(LoginSession.account_id) == account_id,
        col(LoginSession.revoked_at).is_(None),
        col(LoginSession.expires_at) > utcnow(),
    )
    async with gw.app.state.services.db.reader() as s:
        account = (
            await s.execute(select(Account).where(col(Account.id) == account_id))
        ).scalar_one()
        of_account = col(Identity.account_id) == account_id
        identities = (await s.execute(select(func.count()).where(of_account))).scalar_one()
        sessions = (await s.execute(select(func.count()).where(*live))).scalar_one()
    return account.status, account.deletion_due_at is not None, identities, sessions


async def trial(gw: Harness, user: str) -> None:
    first = await login(gw, user)
    account = account_uuid(first["account"]["id"])
    assert (await delete(gw, first["accessToken"]))["pending"] is True
    await make_due(gw, account)
    purged, *answers = await asyncio.gather(
        gw.app.state.api.rights.carry_out_due(),
        login(gw, user, "club-mp"),
        login(gw, user, "shop-mp"),
        gw.gql(REFRESH, {"t": first["refreshToken"]}),
    )
    status, pending, identities, sessions = await state_of(gw, account)
    logins: list[dict[str, Any]] = answers[:2]
    assert answers[2]["data"]["refreshToken"]["__typename"] != "RefreshSuccess", answers
    if purged:
        assert (status, pending, identities, sessions) == ("deleted", False, 0, 0), logins
    else:
        assert (status, pending) == ("active", False), logins
    for answer in logins:
        assert answer["__typename"] == "LoginSuccess", answer
        on_account = account_uuid(answer["account"]["id"]) == account
        assert (await gw.viewer_id(answer["accessToken"]) is not None) is not (
            purged and on_account
        ), (purged, answer)
    after = await login(gw, user)
    assert after["__typename"] == "LoginSuccess", after
    assert (account_uuid(after["account"]["id"]) == account) is not bool(purged), after
    assert await gw.viewer_id(after["accessToken"]) == after["account"]["id"]


async def test_purge_due_racing_logins_and_a_refresh_erases_whole_or_not_at_all(
    gw: Harness,
) -> None:
    for n in range(TRIALS):
        await trial(gw, f"purged-{n}")


@pytest.mark.parametrize("left", [("wechat_openid", "wechat_unionid"), ("wechat_openid",)])
async def test_identities_left_on_an_erased_account_never_sign_in_to_it(
    database_url: str, configure: Configure, left: tuple[str, ...]
) -> None:
    """What a race before the fix left behind (an erased account still holding the person's
    identities) no longer locks the person out: the login releases them and starts anew (with
    only the openid left, the club-mp login creates a new account with the unionid, and the
    shop-mp login then takes the openid back instead of merging with the erased account)."""
    async with running(configure(database_url, accounts={"deletion_grace_days": 0})) as gw:
        first = await login(gw, "left-over")
        erased = account_uuid(first["account"]["id"])
        async with gw.app.state.services.db.reader() as s:
            rows = await s.execute(select(Identity).where(col(Identity.account_id) == erased))
            found = [r for r in rows.scalars().all() if r.kind in left]
            kept = [{**r.model_dump(), "id": uuid.uuid4()} for r in found]
        assert (await delete(gw, first["accessToken"]))["pending"] is False
        async with gw.app.state.services.db.transaction() as s:
            s.add_all(Identity(**row) for row in kept)  # as the race left them
        assert await state_of(gw, erased) == ("deleted", False, len(left), 0)

        for app in ("club-mp", "shop-mp", "shop-mp"):
            again = await login(gw, "left-over", app)
            assert again["__typename"] == "LoginSuccess", again
            assert account_uuid(again["account"]["id"]) != erased
            assert await gw.viewer_id(again["accessToken"]) == again["account"]["id"]
        assert await state_of(gw, erased) == ("deleted", False, 0, 0)
