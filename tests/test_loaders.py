"""The caller's account primed into a request's loaders: answered without making the accounts
loader while none exists, and exactly what the loader answers once it does (gateway.api.context).
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from gateway.accounts.model import AccountView
from gateway.api.context import Loaders
from gateway.sessions.model import Viewer
from tests.support.harness import Harness


async def _account_id(gw: Harness) -> uuid.UUID:
    token = (await gw.login("shop-mp", "ann"))["accessToken"]
    viewer: Viewer = await gw.app.state.api.sessions.authenticate(token)
    return viewer.account_id


async def test_the_primed_account_is_the_loaders_answer(gw: Harness) -> None:
    graph = gw.app.state.api.accounts
    account_id = await _account_id(gw)
    (found,) = await graph.accounts([account_id])
    assert found is not None
    stored: AccountView = found
    primed = replace(stored, nickname="primed")  # told apart from a database read

    # the reference: a loader made first, then primed (as before this module's shortcut)
    reference = Loaders(graph)
    reference.accounts.prime(account_id, primed)
    assert await reference.accounts.load(account_id) is primed

    loaders = Loaders(graph)
    loaders.prime_account(account_id, primed)
    assert await loaders.account(account_id) is primed
    assert "accounts" not in loaders.__dict__  # no loader made for it
    # the loader, once made, holds the primed account and reads the others
    assert await loaders.accounts.load(account_id) is primed
    assert await loaders.account(account_id) is primed
    assert await loaders.account(uuid.uuid4()) is None

    # primed after the loader was made: into the loader, which keeps what it has
    later = Loaders(graph)
    read = await later.account(account_id)
    assert read == stored
    later.prime_account(account_id, primed)
    assert await later.account(account_id) is read  # as DataLoader.prime: no overwrite

    # cleared after a change (gateway.api.types.changed_account): read again
    loaders.accounts.clear(account_id)
    assert await loaders.account(account_id) == stored
