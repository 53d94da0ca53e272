"""``gateway clients ...``: the relying parties of the OpenID Connect provider.

Straight on the client registry (``gateway.clients``): a change lands in the database, and
every running gateway sees it within ``registry.CACHE_SECONDS`` (its cache), without a
restart. Output is JSON; a confidential client's secret is printed once, at ``add`` and
``rotate-secret``, and kept hashed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.audit import ClientInfo
from gateway.clients.grants import Consents
from gateway.clients.registry import DEFAULT_SCOPES, ClientError, Clients
from gateway.config import GatewayConfig
from gateway.store.db import Database, on_database


def add_parsers(sub: Any) -> None:
    clients = sub.add_parser("clients", help="manage websites that log in with OpenID Connect")
    csub = clients.add_subparsers(dest="clients_command", required=True, metavar="ACTION")
    add = csub.add_parser("add", help="register a client; prints its client_id (and secret once)")
    add.add_argument("name")
    add.add_argument("--redirect-uri", action="append", required=True, dest="redirect_uris")
    add.add_argument(
        "--post-logout-redirect-uri", action="append", default=[], dest="post_logout_uris"
    )
    add.add_argument("--public", action="store_true", help="no secret (SPA, app): PKCE only")
    add.add_argument(
        "--first-party", action="store_true", help="the company's own site: no consent screen"
    )
    add.add_argument(
        "--scopes",
        default=",".join(DEFAULT_SCOPES),
        help="comma-separated: openid, profile, phone, offline_access (default openid,profile)",
    )
    csub.add_parser("list", help="every client, as JSON lines")
    for action, text in (
        ("show", "one client as JSON"),
        ("disable", "refuse this client from now on (within seconds)"),
        ("rotate-secret", "a new secret; the old one stops working (within seconds)"),
    ):
        csub.add_parser(action, help=text).add_argument("client_id")
    revoke = csub.add_parser(
        "revoke-consent", help="withdraw an account's consent to a client, ending its sessions"
    )
    revoke.add_argument("client_id")
    revoke.add_argument("--account", required=True, type=uuid.UUID, help="the account's id")


def run(config: GatewayConfig, args: argparse.Namespace) -> None:
    try:
        asyncio.run(
            on_database(config.database_url, lambda db: _COMMANDS[args.clients_command](db, args))
        )
    except ClientError as exc:
        print(f"gateway: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None


def _print(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False))


async def _add(db: Database, args: argparse.Namespace) -> None:
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    view, secret = await Clients(db).add(
        args.name,
        args.redirect_uris,
        args.post_logout_uris,
        scopes,
        public=args.public,
        first_party=args.first_party,
    )
    shown = view.public_dict()
    if secret is not None:
        shown["client_secret"] = secret  # shown once: only its hash is kept
    _print(shown)


async def _list(db: Database, _: argparse.Namespace) -> None:
    for view in await Clients(db).all():
        _print(view.public_dict())


async def _show(db: Database, args: argparse.Namespace) -> None:
    _print((await Clients(db).show(args.client_id)).public_dict())


async def _disable(db: Database, args: argparse.Namespace) -> None:
    await Clients(db).disable(args.client_id)
    _print({"client_id": args.client_id, "disabled": True})


async def _rotate(db: Database, args: argparse.Namespace) -> None:
    secret = await Clients(db).rotate_secret(args.client_id)
    _print({"client_id": args.client_id, "client_secret": secret})


async def _revoke_consent(db: Database, args: argparse.Namespace) -> None:
    await Clients(db).show(args.client_id)
    done = await Consents(db).revoke(args.account, args.client_id, ClientInfo("operator"))
    _print({"client_id": args.client_id, "account": str(args.account), "revoked": done})


_COMMANDS: dict[str, Callable[[Database, argparse.Namespace], Awaitable[None]]] = {
    "add": _add,
    "list": _list,
    "show": _show,
    "disable": _disable,
    "rotate-secret": _rotate,
    "revoke-consent": _revoke_consent,
}
