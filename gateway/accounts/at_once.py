"""The account graph's part of a WeChat login done in one statement (PostgreSQL), or in one
hand-off to a worker thread (SQLite, which has no data-modifying CTEs: ``sign_in_on``).

Most logins are a returning user whose keys all sit on one active account, or a new user none
of whose keys exist: neither needs a lock, a merge or a decision the database cannot make in
the statement itself. The caller (``sessions``) adds the session, refresh-token and audit rows
to the same statement and autocommits it: one round trip instead of a transaction's eight to
fourteen. Anything else (a new key for a known account, keys on several accounts, a disabled
account, a deletion to cancel) leaves the statement with no row, and the transactional path
(``graph.find_or_create``) decides. A new user's identities are inserted without ``ON
CONFLICT``: when a concurrent login wrote one of them first, the unique index fails the whole
statement (nothing is written) and the caller falls back to the transactional path, which
finds the winner's account. A returning user's account is locked ``FOR KEY SHARE`` and its
state checked as an erasure committed it (see ``account``): no session lands on an erased
account.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    bindparam,
    distinct,
    exists,
    false,
    func,
    select,
    true,
    union_all,
)
from sqlmodel import col

from gateway.accounts import announce, graph, session_keys, views
from gateway.accounts.model import AccountStatus, AccountView, IdentityKey
from gateway.accounts.tables import Account, Identity
from gateway.outbox import EventType, insert_on, insert_when, row
from gateway.store.driver import SyncDriver

_ACCOUNTS: Any = Account.__table__  # type: ignore[attr-defined]
_IDENTITIES: Any = Identity.__table__  # type: ignore[attr-defined]
_IS_NEW = views.labelled("is_new")
_EVENT = "created_event_"  # the prefix of the account.created event's parameters


class SignInPart(NamedTuple):
    """The account graph's part of a one-statement login, for the statement's owner
    (``sessions``) to compose with its own rows without knowing the account's columns: SQL
    for the account signed in to and for whether it is new, the labelled columns to select,
    the graph's writes (CTEs) to add; :meth:`read` gets the account back from a result row
    by those labels."""

    account_id: Any
    is_new: Any
    columns: tuple[Any, ...]
    writes: tuple[Any, ...]

    @staticmethod
    def read(row: Mapping[str, Any]) -> tuple[AccountView, bool]:
        """The account signed in to, and whether the statement created it."""
        return views.read_account(row), bool(row[_IS_NEW])


@functools.cache
def account(count: int, with_session_key: bool) -> SignInPart:
    """The account a login of ``count`` keys signs in to, as a CTE (the account's labelled
    columns and whether it is new; no row when the transactional path must decide), and the
    graph's writes that go with it (the new account and its identities are inside the CTE;
    the session key is a write of its own)."""
    known = graph.owners_statement(count).cte("known")
    returning, created = _returning(known, count), _created(known)
    identities = (
        session_keys.dialect_insert("postgresql")(_IDENTITIES)
        .from_select(
            ["id", "account_id", "kind", "scope", "subject", "app_key", "created_at"],
            union_all(*(_identity_row(created, i) for i in range(count))),
        )
        .cte("new_identities")
    )
    signed_in = union_all(select(*returning.c), select(*created.c, true())).cte("signed_in")
    account_id = views.account_id_in(signed_in)
    created_event = insert_when({"account_id": created.c.id}, true(), _EVENT).cte("created_event")
    writes = [identities, created_event]
    if with_session_key:
        writes.append(session_keys.keep_when(account_id))
    is_new = select(signed_in.c[_IS_NEW]).scalar_subquery()
    return SignInPart(account_id, is_new, tuple(signed_in.c), tuple(writes))


def _returning(known: Any, count: int) -> Any:
    """A returning user's account: every key known, all on it, active, no deletion pending.
    FOR KEY SHARE (the lock the session row's foreign key takes anyway): an erasure or a
    deletion mark in flight (FOR UPDATE) is waited for, and the account's state read again
    as it committed it, so that no row comes out and the transactional path decides."""
    key_count = select(func.count()).select_from(known).scalar_subquery()
    owners = select(func.count(distinct(known.c.account_id))).scalar_subquery()
    return (
        select(*views.LABELLED, false().label(_IS_NEW))
        .where(
            col(Account.id).in_(select(known.c.account_id)),
            col(Account.status) == AccountStatus.ACTIVE,
            col(Account.deletion_due_at).is_(None),
            key_count == count,
            owners == 1,
        )
        .with_for_update(key_share=True, of=_ACCOUNTS)
        .cte("returning")
    )


def _created(known: Any) -> Any:
    """A new user's account, inserted only when none of the keys is known."""
    return (
        session_keys.dialect_insert("postgresql")(_ACCOUNTS)
        .from_select(
            ["id", "status", "created_at"],
            select(
                _bound("account_id", _ACCOUNTS.c.id),
                _bound("account_status", _ACCOUNTS.c.status),
                _bound("now", _ACCOUNTS.c.created_at),
            ).where(~exists(select(known.c.account_id))),
        )
        .returning(*(_ACCOUNTS.c[name] for name in views.FIELDS))
        .cte("created")
    )


def _identity_row(created: Any, i: int) -> Any:
    columns = _IDENTITIES.c
    return select(
        _bound(f"identity_id{i}", columns.id),
        created.c.id,
        _bound(f"kind{i}", columns.kind),
        _bound(f"scope{i}", columns.scope),
        _bound(f"subject{i}", columns.subject),
        _bound("app_key", columns.app_key),
        _bound("now", columns.created_at),
    )


def _bound(name: str, column: Any) -> Any:
    return bindparam(name, type_=column.type)


def params(keys: list[IdentityKey], app_key: str, now: datetime) -> dict[str, Any]:
    """The graph's values of the statement: the keys, and the ids a new user would get (with
    the ``account.created`` it would announce)."""
    values = graph.key_params(keys)
    account_id = uuid.uuid4()
    values |= {"account_id": account_id, "account_status": AccountStatus.ACTIVE.value}
    rows = graph.identity_rows(account_id, keys, app_key, now)
    values |= {f"identity_id{i}": row["id"] for i, row in enumerate(rows)}
    event = _created_event(account_id, keys, rows, now)
    values |= {_EVENT + name: value for name, value in event.items() if name != "account_id"}
    return values | {"now": now}


def _created_event(
    account_id: uuid.UUID, keys: list[IdentityKey], rows: list[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    audience = announce.audience_of_keys(keys)
    data = announce.created_data(rows)
    return row(EventType.ACCOUNT_CREATED, account_id, audience, data, now)


@functools.cache
def _owners_with_account(count: int) -> Any:
    """Each known key's account row, in one read: the owner and its state together."""
    known = graph.owners_statement(count).subquery("known")
    return select(*views.ACCOUNT_COLUMNS).join_from(
        known, Account, col(Account.id) == known.c.account_id
    )


def sign_in_on(
    conn: SyncDriver,
    keys: list[IdentityKey],
    app_key: str,
    session_key: dict[str, Any] | None,
    now: datetime,
) -> tuple[AccountView, bool] | None:
    """SQLite's counterpart of :func:`account`: the same decisions, as statements on a
    synchronous connection inside one write transaction (``Database.write_in_thread``; the
    write lock serialises them). The account and whether it is new, the session key
    (``session_keys.params``) kept; ``None`` when the transactional path must decide. A new
    account and its identities are created at ``now``, the login's own time, as on
    PostgreSQL (re-authentication tells them from later additions)."""
    owned = conn.execute(_owners_with_account(len(keys)), graph.key_params(keys)).all()
    known = [views.account_view(r) for r in owned]
    active = AccountStatus.ACTIVE.value
    if not known:
        account_id = uuid.uuid4()
        conn.execute(graph.INSERT_ACCOUNT, {"id": account_id, "status": active, "created_at": now})
        rows = graph.identity_rows(account_id, keys, app_key, now)
        conn.execute(graph.INSERT_IDENTITY, rows)
        insert_on(conn, [_created_event(account_id, keys, rows, now)])
        view = AccountView(account_id, active, now, None, None, None)
    else:
        view = known[0]
        one_owner = len(known) == len(keys) and len({a.id for a in known}) == 1
        if not one_owner or view.status != active or view.deletion_due_at is not None:
            return None
    if session_key is not None:
        conn.execute(session_keys.upsert("sqlite"), session_key)
    return view, not known
