"""``gateway accounts ...`` and ``gateway audit ...``: the operators' tools (partners and
account events: ``partner_operators``).

Each command builds the gateway's services (the composition root, as the server does) and calls
the rights use case, so an operator's action follows the same rules and lands in the same audit
trail as everything else, with the operator's name and reason.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gateway.accounts.model import AccountView, IdentityKey
from gateway.arguments import instant, integer
from gateway.audit import AuditQuery
from gateway.config import GatewayConfig
from gateway.errors import GatewayError
from gateway.rights import documents
from gateway.rights.service import Operator, Rights
from gateway.sessions.cache import MAX_AGE_SECONDS

if TYPE_CHECKING:
    from gateway.bootstrap import Services


def add_parsers(sub: Any) -> None:
    _add_account_parsers(sub)


def _add_account_parsers(sub: Any) -> None:
    accounts = sub.add_parser("accounts", help="find, show, disable, delete, export accounts")
    asub = accounts.add_subparsers(dest="accounts_command", required=True, metavar="ACTION")
    find = _with_json(asub.add_parser("find", help="find an account by any identifier or id"))
    find.add_argument("id", nargs="?", help="an account id")
    for name in ("app", "openid", "platform", "unionid", "username", "phone"):
        find.add_argument(f"--{name}")
    _with_json(asub.add_parser("show", help="identities, sessions, events, merges")).add_argument(
        "id"
    )
    disable = _with_json(asub.add_parser("disable", help="refuse logins; revoke sessions now"))
    disable.add_argument("id")
    disable.add_argument("--reason", required=True)
    enable = _with_json(asub.add_parser("enable", help="allow logins again"))
    enable.add_argument("id")
    enable.add_argument("--reason")
    delete = _with_json(asub.add_parser("delete", help="erase the account now (no grace)"))
    delete.add_argument("id")
    delete.add_argument("--reason", required=True)
    export = asub.add_parser("export", help="print the account's personal-data document")
    export.add_argument("id")
    export.add_argument("--reason")
    _with_json(asub.add_parser("purge-due", help="erase accounts whose grace period is over"))

    audit = sub.add_parser("audit", help="print audit events as JSON lines; prune old ones")
    audit.add_argument("--account", help="an account id")
    audit.add_argument("--kind", help="e.g. login, merge, account_deleted")
    audit.add_argument(
        "--since", type=instant("--since"), help="ISO date or time (UTC when no offset is given)"
    )
    audit.add_argument("--limit", type=integer("--limit", 1, 100_000), default=100)
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION")
    prune = audit_sub.add_parser("prune", help="remove events older than the retention period")
    prune.add_argument(
        "--older-than",
        type=integer("--older-than", 1, 36_500, "days"),
        metavar="DAYS",
        help="default: retention_days",
    )


def _with_json(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--json", action="store_true", help="JSON output")
    return parser


def run(config: GatewayConfig, args: argparse.Namespace) -> None:
    _warn_if_unheard(config, args)
    try:
        if args.command == "accounts":
            handler = _ACCOUNTS[args.accounts_command]
            asyncio.run(_with_rights(config, lambda rights: handler(rights, config, args)))
        elif args.audit_command == "prune":
            asyncio.run(_with_services(config, lambda svc: _prune(svc, config, args)))
        else:
            asyncio.run(_with_rights(config, lambda rights: _audit(rights, args)))
    except GatewayError as exc:
        print(f"gateway: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None
    except ValueError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


_CHANGES_ACCOUNTS = frozenset({"disable", "enable", "delete", "purge-due"})


def _warn_if_unheard(config: GatewayConfig, args: argparse.Namespace) -> None:
    """Replicas with ``GATEWAY_REDIS_URL`` hear invalidations on Redis only; a command without
    it announces its change on the database (PostgreSQL's NOTIFY, the SQLite file's signal),
    which they do not listen to. Whether replicas use Redis is in their environment, not in the
    configuration: every command that changes accounts says so, unless it has the URL or runs
    on the embedded default database (one local server, no replicas)."""
    if config.settings.redis_url or config.embedded_database:
        return
    if args.command == "accounts" and args.accounts_command in _CHANGES_ACCOUNTS:
        print(
            "gateway: warning: GATEWAY_REDIS_URL is not set: replicas that use Redis do not "
            f"hear this change and may accept the account's tokens for up to "
            f"{MAX_AGE_SECONDS:g} s; run operator commands with the replicas' GATEWAY_REDIS_URL",
            file=sys.stderr,
        )


async def _with_rights(config: GatewayConfig, act: Callable[[Rights], Awaitable[None]]) -> None:
    await _with_services(config, lambda svc: act(svc.api.rights))


async def _with_services(config: GatewayConfig, act: Callable[[Services], Awaitable[None]]) -> None:
    from gateway.bootstrap import services

    async with services(config) as svc:
        await act(svc)


def _operator(args: argparse.Namespace) -> Operator:
    try:
        name = getpass.getuser()
    except Exception:
        name = "unknown"
    return Operator(name, getattr(args, "reason", None))


def _account_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValueError(f"not an account id: {raw!r}") from None


def _emit(args: argparse.Namespace, document: Any, text: str) -> None:
    print(json.dumps(document, indent=2, ensure_ascii=False) if args.json else text)


def _key(config: GatewayConfig, args: argparse.Namespace) -> IdentityKey | None:
    if args.openid:
        app = config.app(args.app or "")
        if app is None:
            raise ValueError("--openid needs --app with a configured app key")
        return IdentityKey.openid(app.appid, args.openid)
    if args.unionid:
        if not args.platform:
            raise ValueError("--unionid needs --platform")
        return IdentityKey.unionid(args.platform, args.unionid)
    if args.username:
        from gateway.accounts.model import normalize_username

        return IdentityKey.username(normalize_username(args.username))
    if args.phone:
        from gateway import phones
        from gateway.errors import InvalidInput

        try:
            return IdentityKey.phone(phones.normalise(args.phone))
        except InvalidInput:
            raise ValueError(f"--phone {args.phone!r} is not a phone number") from None
    return None


def _row(view: AccountView) -> str:
    return f"{view.id}  {view.status:<8}  created {view.created_at:%Y-%m-%d %H:%M}"


async def _find(rights: Rights, config: GatewayConfig, args: argparse.Namespace) -> None:
    key = _key(config, args)
    account_id = _account_id(args.id) if args.id else None
    if key is None and account_id is None:
        raise ValueError("give an account id or one of --openid, --unionid, --username, --phone")
    found = await rights.find(key, account_id)
    text = "\n".join(_row(v) for v in found) or "no account found"
    _emit(args, [documents.account(v) for v in found], text)
    if not found:
        raise SystemExit(1)


async def _show(rights: Rights, _: GatewayConfig, args: argparse.Namespace) -> None:
    shown = await rights.show(_account_id(args.id))
    _emit(args, shown, _show_text(shown))


def _show_text(shown: dict[str, Any]) -> str:
    account = shown["account"]
    lines = [f"account {account['id']}  {account['status']}  created {account['createdAt']}"]
    for name in ("disabledReason", "deletionDueAt", "deletedAt", "mergedInto"):
        if account.get(name):
            lines.append(f"  {name}: {account[name]}")
    lines.append(f"identities ({len(shown['identities'])}):")
    lines += [
        f"  {i['kind']:<15} {i['scope'] or '-':<18} {i['subject']}  app={i['app'] or '-'}"
        for i in shown["identities"]
    ]
    lines.append(f"live sessions ({len(shown['sessions'])}):")
    lines += [
        f"  {s['id']}  {(s['app'] or {}).get('key', '-')}  {s['platform']}  ip={s['ip'] or '-'}"
        f"  last used {s['lastUsedAt']}"
        for s in shown["sessions"]
    ]
    lines.append(f"merged from ({len(shown['mergedFrom'])}):")
    lines += [f"  {m['id']}" for m in shown["mergedFrom"]]
    lines.append("last events:")
    lines += [f"  {e['at']}  {e['kind']}  {json.dumps(e['detail'])}" for e in shown["lastEvents"]]
    return "\n".join(lines)


async def _disable(rights: Rights, _: GatewayConfig, args: argparse.Namespace) -> None:
    account_id = _account_id(args.id)
    revoked = await rights.set_disabled(account_id, True, _operator(args))
    done = {"account": str(account_id), "status": "disabled", "revokedSessions": revoked}
    _emit(args, done, f"{account_id} disabled; {revoked} session(s) revoked")


async def _enable(rights: Rights, _: GatewayConfig, args: argparse.Namespace) -> None:
    account_id = _account_id(args.id)
    await rights.set_disabled(account_id, False, _operator(args))
    _emit(args, {"account": str(account_id), "status": "active"}, f"{account_id} enabled")


async def _delete(rights: Rights, _: GatewayConfig, args: argparse.Namespace) -> None:
    account_id = _account_id(args.id)
    await rights.delete_now(account_id, _operator(args))
    _emit(args, {"account": str(account_id), "status": "deleted"}, f"{account_id} deleted")


async def _export(rights: Rights, _: GatewayConfig, args: argparse.Namespace) -> None:
    document = await rights.export(_account_id(args.id), _operator(args))
    print(json.dumps(document, indent=2, ensure_ascii=False))


async def _purge_due(rights: Rights, _: GatewayConfig, args: argparse.Namespace) -> None:
    done = await rights.carry_out_due()
    _emit(args, {"deleted": done}, f"{done} due deletion(s) carried out")


_ACCOUNTS: dict[str, Callable[[Rights, GatewayConfig, argparse.Namespace], Awaitable[None]]] = {
    "find": _find,
    "show": _show,
    "disable": _disable,
    "enable": _enable,
    "delete": _delete,
    "export": _export,
    "purge-due": _purge_due,
}


async def _audit(rights: Rights, args: argparse.Namespace) -> None:
    accounts = (_account_id(args.account),) if args.account else ()
    query = AuditQuery(accounts, args.kind, args.since, args.limit)
    for event in await rights.audit_events(query):
        print(json.dumps(event.as_dict(), ensure_ascii=False))


async def _prune(svc: Services, config: GatewayConfig, args: argparse.Namespace) -> None:
    """Audit events older than ``--older-than`` (or their retention), and account events
    older than theirs (``[events] retention_days``), as the periodic task does."""
    from gateway.events.retention import prune_expired

    days = args.older_than if args.older_than is not None else config.audit.retention_days
    operator = Operator(_operator(args).name, f"older than {days} days")
    removed = await svc.api.rights.prune_audit(days, operator)
    print(f"{removed} audit event(s) older than {days} days removed")
    kept = config.events.retention_days
    pruned = await prune_expired(svc.db, kept)
    print(
        f"{pruned.events} account event(s) older than {kept} days removed"
        f" ({pruned.undelivered} of their webhook deliveries still pending, given up)"
    )
