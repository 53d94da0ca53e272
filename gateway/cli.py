"""``gateway``: run the server, migrate the database, manage keys, export the schema."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway import client_operators, console_cli, logs, operators, partner_operators
from gateway.arguments import BadArgument, check_utf8, integer, number
from gateway.config import SERVE_WORKERS_ENV, ConfigError, GatewayConfig, load_config, load_settings

DESCRIPTION = """\
Identity gateway for the WeChat ecosystem (GraphQL at /graphql).

With no configuration it runs in SANDBOX MODE: a SQLite file in the current directory and an
emulated WeChat with demo apps. Open http://127.0.0.1:8000/graphql, mint a code with
  curl -X POST 'http://127.0.0.1:8000/sandbox/code?app=shop-mp&user=alice'
and send it in the loginByCode mutation.

For real apps set GATEWAY_CONFIG (a TOML file with [[apps]]), and for production
GATEWAY_DATABASE_URL, GATEWAY_SECRET_KEY and GATEWAY_SIGNING_KEYS (see README.md).
"""


PORT = integer("--port", 1, 65535)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=PORT, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--workers", type=integer("--workers", 1, 256), default=1, help="processes (default 1)"
    )
    sub.add_parser("migrate", help="bring the database schema to the latest migration")
    keys = sub.add_parser("keys", help="manage access-token signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    keys_sub.add_parser("rotate", help="add a new signing key; older keys keep verifying")
    keys_sub.add_parser("show", help="print the public JWKS")
    operators.add_parsers(sub)
    console_cli.add_parsers(sub)
    partner_operators.add_parsers(sub)
    client_operators.add_parsers(sub)
    sandbox = sub.add_parser("sandbox", help="run only the WeChat emulator (for tests and demos)")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=PORT, default=9000)
    sandbox.add_argument(
        "--latency-ms",
        type=number("--latency-ms", 0, 60_000),
        default=0.0,
        help="added to every call",
    )
    schema = sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    schema.add_argument("--output", type=Path, help="write to this file instead")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    try:
        check_utf8(sys.argv[1:] if argv is None else argv)
        args = _parser().parse_args(argv)
    except BadArgument as exc:
        print(f"gateway: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        settings = load_settings()
        logs.configure(
            settings.log_level, "text" if args.command != "serve" else settings.effective_log_format
        )
        _run(args)
    except ConfigError as exc:
        print(f"gateway: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _run(args: argparse.Namespace) -> None:
    if args.command == "schema":
        from gateway.api.schema import export_sdl

        if args.output:
            args.output.write_text(export_sdl(), encoding="utf-8")
        else:
            sys.stdout.write(export_sdl())
    elif args.command == "sandbox":
        _sandbox(args)
    else:
        config = load_config()
        commands = {
            "serve": _serve,
            "migrate": _migrate,
            "keys": _keys,
            "partners": partner_operators.run,
            "events": partner_operators.run,
            "clients": client_operators.run,
            "accounts": operators.run,
            "audit": operators.run,
            "operators": console_cli.run,
        }
        commands[args.command](config, args)


def _serve(config: GatewayConfig, args: argparse.Namespace) -> None:
    import uvicorn

    from gateway.keyfiles import load_secrets

    load_secrets(config)  # fail fast, once, before workers start (and create embedded keys)
    workers = args.workers
    if config.sandbox and workers > 1:
        logging.warning("sandbox mode keeps the emulator in one process: using 1 worker")
        workers = 1
    # the workers' token caches: without Redis or PostgreSQL to hear each other, none
    os.environ[SERVE_WORKERS_ENV] = str(workers)
    if config.sandbox:  # the demo partner's webhook points back here
        _announce_origin(args.host, args.port)
    # libuv's worker threads (uvloop) only resolve host names here, when the WeChat client
    # opens a connection: two are plenty, and each thread keeps a malloc arena (default 4)
    os.environ.setdefault("UV_THREADPOOL_SIZE", "2")
    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        proxy_headers=False,  # X-Forwarded-For: see GATEWAY_TRUSTED_PROXIES (gateway.addresses)
        server_header=False,
        ws="none",  # GraphQL over HTTP only: no websockets module loaded
        log_config=None,
        timeout_graceful_shutdown=20,
        # slow or idle clients: connections over the limit get 503, idle keep-alives close after
        # 5 s; a body must arrive within GATEWAY_BODY_TIMEOUT_SECONDS (gateway.limits)
        limit_concurrency=config.settings.limit_concurrency,
        timeout_keep_alive=5,
        log_level=config.settings.log_level.lower(),
    )


def _announce_origin(host: str, port: int) -> None:
    """Where this sandbox gateway answers, for its own webhook receiver (``sandbox_routes``)."""
    from gateway.sandbox_routes import SERVE_ORIGIN_ENV

    reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    if ":" in reachable:
        reachable = f"[{reachable}]"
    os.environ[SERVE_ORIGIN_ENV] = f"http://{reachable}:{port}"


def _migrate(config: GatewayConfig, _: argparse.Namespace) -> None:
    from gateway.store import migrate

    migrate.upgrade(config.database_url)
    print(f"database at {migrate.head_revision()}")


def _keys(config: GatewayConfig, args: argparse.Namespace) -> None:
    import json

    from gateway.keyfiles import load_secrets, signing_keys_path
    from gateway.sessions.keys import SigningKeys, load_keys_file, new_key, write_keys_file

    if args.keys_command == "rotate":
        path = signing_keys_path(config)
        rotated = load_keys_file(path).rotated() if path.exists() else SigningKeys([new_key()])
        write_keys_file(path, rotated)
        print(f"new signing key {rotated.current.kid} in {path}; restart or roll the gateway")
    else:
        print(json.dumps(load_secrets(config).signing_keys.public_jwks(), indent=2))


def _sandbox(args: argparse.Namespace) -> None:
    import uvicorn

    from gateway.sandbox_routes import emulated_apps
    from gateway.wechat.sandbox import create_sandbox_app

    settings = load_settings()
    apps = emulated_apps(load_config(settings.model_copy(update={"wechat_api_base": None})))
    uvicorn.run(
        create_sandbox_app(apps, latency=args.latency_ms / 1000),
        host=args.host,
        port=args.port,
        log_level="warning",
    )
