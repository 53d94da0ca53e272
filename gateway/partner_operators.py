"""``gateway partners ...`` and ``gateway events ...``: partner services, their webhooks and
the deliveries of account events to them.

Straight on the partner registry and the events' queue (no WeChat, no account services): a
change lands in the database, where every running gateway's delivery worker reads it in its
next round with work, without a restart. A webhook URL the gateway
would not deliver to is refused here, with the reason and a non-zero exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.arguments import instant, integer
from gateway.config import GatewayConfig
from gateway.events import queue
from gateway.partners.registry import Partners, RegistryError
from gateway.partners.webhooks import WebhookSecrets, new_webhook_secret
from gateway.store.db import Database, on_database
from gateway.store.models import utcnow
from gateway.webhook_urls import RefusedUrl

STATUSES = ("pending", "delivered", "failed", "feed")


def add_parsers(sub: Any) -> None:
    _add_partner_parsers(sub)
    _add_events_parsers(sub)


def _add_partner_parsers(sub: Any) -> None:
    partners = sub.add_parser("partners", help="manage partner services (client credentials)")
    psub = partners.add_subparsers(dest="partners_command", required=True, metavar="ACTION")
    add = psub.add_parser("add", help="register a partner; prints its secrets once")
    add.add_argument("client_id")
    add.add_argument("--apps", default="", help="comma-separated app keys it may see")
    add.add_argument("--platforms", default="", help="comma-separated open platforms")
    add.add_argument(
        "--scopes",
        default="accounts:lookup",
        help="comma-separated scopes (accounts:lookup, accounts:lookup-username, "
        "accounts:lookup-phone, identities:identifiers, identities:all-apps)",
    )
    add.add_argument(
        "--rate-limit",
        type=integer("--rate-limit", 1, 1_000_000),
        default=600,
        help="lookups per minute",
    )
    add.add_argument("--webhook-url", help="https URL receiving its account events (signed)")
    psub.add_parser("list", help="list partners")
    rotate = psub.add_parser("rotate-secret", help="issue a new secret; the old one stops working")
    rotate.add_argument("client_id")
    disable = psub.add_parser("disable", help="refuse this partner's tokens from now on")
    disable.add_argument("client_id")
    webhook = psub.add_parser("webhook", help="set, disable or re-key a partner's webhook")
    webhook.add_argument("client_id")
    what = webhook.add_mutually_exclusive_group(required=True)
    what.add_argument("--url", help="where its account events go (https)")
    what.add_argument("--disable", action="store_true", help="no webhook: the feed only")
    what.add_argument("--rotate-secret", action="store_true", help="a new signing secret")


def _add_events_parsers(sub: Any) -> None:
    events = sub.add_parser("events", help="account events' webhook deliveries")
    esub = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    listing = esub.add_parser("list", help="deliveries as JSON lines, oldest first")
    listing.add_argument("--partner", help="a partner's client_id")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--type", help="e.g. account.merged")
    listing.add_argument("--limit", type=integer("--limit", 1, 100_000), default=1000)
    again = esub.add_parser("redeliver", help="send again, with a fresh retry schedule")
    again.add_argument("event_id", nargs="?", help="an event's id (its webhook-id)")
    again.add_argument("--partner", help="a partner's client_id (with --since)")
    again.add_argument(
        "--since", type=instant("--since"), help="ISO date or time (UTC when no offset is given)"
    )


class Refused(Exception):
    """The command cannot be done as asked; its message is printed, the exit is 1."""


def run(config: GatewayConfig, args: argparse.Namespace) -> None:
    commands = _PARTNERS if args.command == "partners" else _EVENTS
    action = args.partners_command if args.command == "partners" else args.events_command
    try:
        asyncio.run(on_database(config.database_url, lambda db: commands[action](db, config, args)))
    except (RegistryError, Refused, RefusedUrl) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _webhook_secrets(config: GatewayConfig) -> WebhookSecrets:
    from gateway.keyfiles import load_secrets

    return WebhookSecrets(load_secrets(config).secret_key)


async def _checked(config: GatewayConfig, url: str) -> str:
    """The URL, if the gateway would deliver to it now (``RefusedUrl`` says why not)."""
    await config.webhook_policy.resolve(url)
    return url


async def _add(db: Database, config: GatewayConfig, args: argparse.Namespace) -> None:
    unknown = set(_split(args.apps)) - {a.key for a in config.apps}
    if unknown:
        raise RegistryError(f"no such app {sorted(unknown)}")
    webhook, signing = None, None
    if args.webhook_url is not None:
        url = await _checked(config, args.webhook_url)
        signing = new_webhook_secret()
        webhook = (url, _webhook_secrets(config).seal(args.client_id, signing))
    secret = await Partners(db).add(
        args.client_id,
        _split(args.apps),
        _split(args.platforms),
        _split(args.scopes),
        args.rate_limit,
        webhook,
    )
    lines = [f"client_id={args.client_id}", f"client_secret={secret}"]
    if signing is not None:
        lines += [f"webhook_url={args.webhook_url}", f"webhook_secret={signing}"]
    print(
        "\n".join([*lines, "(shown once: the client secret is kept hashed, the webhook's sealed)"])
    )


async def _rotate(db: Database, _: GatewayConfig, args: argparse.Namespace) -> None:
    print(f"client_secret={await Partners(db).rotate_secret(args.client_id)}")


async def _disable(db: Database, _: GatewayConfig, args: argparse.Namespace) -> None:
    await Partners(db).disable(args.client_id)
    print(f"{args.client_id} disabled")


async def _list(db: Database, _: GatewayConfig, __: argparse.Namespace) -> None:
    for p in await Partners(db).all():
        state = "disabled" if p.disabled else "active"
        webhook = f"\twebhook={p.webhook_url}" if p.webhook_url else ""
        print(
            f"{p.client_id}\t{state}\t{p.source}\tapps={','.join(sorted(p.apps))}"
            f"\tplatforms={','.join(sorted(p.platforms))}"
            f"\tscopes={','.join(sorted(p.scopes))}{webhook}"
        )


async def _webhook(db: Database, config: GatewayConfig, args: argparse.Namespace) -> None:
    registry = Partners(db)
    client_id = args.client_id
    if args.disable:
        await registry.set_webhook(client_id, None, None)
        print(f"{client_id}: webhook disabled (its events go to the pull feed only)")
        return
    partner = await registry.get(client_id)
    if partner is None:
        raise RegistryError(f"no CLI partner {client_id}")
    url = await _checked(config, args.url) if args.url else partner.webhook_url
    if url is None:
        raise Refused(f"{client_id} has no webhook: set one with --url")
    sealed = await registry.webhook_secret(client_id)
    signing = None
    if args.rotate_secret or sealed is None:
        signing = new_webhook_secret()
        sealed = _webhook_secrets(config).seal(client_id, signing)
    await registry.set_webhook(client_id, url, sealed)
    print(f"webhook_url={url}")
    if signing is not None:
        print(f"webhook_secret={signing}\n(shown once; the old secret, if any, stops signing now)")


async def _events(db: Database, _: GatewayConfig, args: argparse.Namespace) -> None:
    wanted = queue.Filter(args.partner, args.status, args.type, args.limit)
    for line in await queue.listing(db, wanted):
        print(json.dumps(line, ensure_ascii=False))


async def _redeliver(db: Database, _: GatewayConfig, args: argparse.Namespace) -> None:
    if (args.event_id is None) == (args.since is None):
        raise Refused("give an EVENT_ID, or --partner ID --since TIME")
    if args.since is not None and not args.partner:
        raise Refused("--since needs --partner")
    event_id = None
    if args.event_id is not None:
        try:
            event_id = uuid.UUID(args.event_id)
        except ValueError:
            raise Refused(f"not an event id: {args.event_id!r}") from None
    again = await queue.redeliver(
        db, utcnow(), event_id=event_id, partner=args.partner, since=args.since
    )
    print(f"{again} deliver{'y' if again == 1 else 'ies'} pending again")
    if not again:
        raise SystemExit(1)


Command = Callable[[Database, GatewayConfig, argparse.Namespace], Awaitable[None]]
_PARTNERS: dict[str, Command] = {
    "add": _add,
    "rotate-secret": _rotate,
    "disable": _disable,
    "list": _list,
    "webhook": _webhook,
}
_EVENTS: dict[str, Command] = {"list": _events, "redeliver": _redeliver}
