"""``gateway operators add|list|disable|reset``: the console's operators (not end users; the
account tools are ``gateway accounts`` in ``gateway.operators``).

``add`` and ``reset`` print exactly one JSON object on stdout (``name``, ``role``, a one-time
``password`` changed at the first login, and the base32 ``totp_secret`` for an authenticator
app); anything else goes to stderr. Both secrets are shown once and never kept in clear.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.config import GatewayConfig
from gateway.console.model import ConsoleError, Role
from gateway.console.service import Console


def add_parsers(sub: Any) -> None:
    operators = sub.add_parser("operators", help="the operator console's operators (/admin)")
    osub = operators.add_subparsers(dest="operators_command", required=True, metavar="ACTION")
    add = osub.add_parser("add", help="add an operator; prints its one-time password and TOTP")
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    osub.add_parser("list", help="the operators, as JSON lines")
    disable = osub.add_parser("disable", help="refuse the operator's logins; end its sessions")
    disable.add_argument("name")
    reset = osub.add_parser("reset", help="a new one-time password and TOTP secret")
    reset.add_argument("name")


def run(config: GatewayConfig, args: argparse.Namespace) -> None:
    handler = _COMMANDS[args.operators_command]
    try:
        asyncio.run(_with_console(config, lambda console: handler(console, args)))
    except ConsoleError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except ValueError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


async def _with_console(config: GatewayConfig, act: Callable[[Console], Awaitable[None]]) -> None:
    from gateway.bootstrap import services

    async with services(config) as svc:
        await act(svc.admin.console)


def _by() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


async def _add(console: Console, args: argparse.Namespace) -> None:
    made = await console.add(args.name, Role(args.role), _by())
    print(json.dumps(made.as_dict()))


async def _list(console: Console, _: argparse.Namespace) -> None:
    for operator in await console.operators():
        print(json.dumps(operator.as_dict()))


async def _disable(console: Console, args: argparse.Namespace) -> None:
    await console.disable(args.name, _by())
    print(f"operator {args.name} disabled; its sessions ended", file=sys.stderr)


async def _reset(console: Console, args: argparse.Namespace) -> None:
    made = await console.reset(args.name, _by())
    print(json.dumps(made.as_dict()))


_COMMANDS: dict[str, Callable[[Console, argparse.Namespace], Awaitable[None]]] = {
    "add": _add,
    "list": _list,
    "disable": _disable,
    "reset": _reset,
}
