"""The soak's servers: its own PostgreSQL database, its own redis-server, the WeChat emulator,
P gateway processes (one port each, so one can be killed and started again on its port) and a
partner whose webhook points at the soak's receiver.

Nothing shared is touched: the database is created for the run (``gateway_soak_*``) and
dropped at its end, and Redis is a ``redis-server`` of the soak's own on a free port, so its
restart (a fault) and every key check see the gateway's keys only. The machine's Redis and
other databases are never connected to.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import asyncpg

from bench import procs
from bench.stack import APP_KEY, APPID, PLATFORM, REPO

PARTNER = "soak-crm"
DB_PREFIX = "gateway_soak_"


class SoakStack:
    """Starts and restarts the soak's servers; ``procs.Processes`` stops them all at the end."""

    def __init__(self, tmp: Path, processes: procs.Processes, pg_url: str, gateways: int) -> None:
        self.tmp = tmp
        self.procs = processes
        self.pg_url = pg_url.rstrip("/")
        self.count = gateways
        gateway = shutil.which("gateway", path=str(Path(sys.executable).parent))
        self.gateway_cmd = [gateway] if gateway else [sys.executable, "-m", "gateway"]
        self.db_name = f"{DB_PREFIX}{os.getpid()}_{secrets.token_hex(3)}"
        self.partner_secret = secrets.token_urlsafe(24)
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.secret_key = secrets.token_urlsafe(36)
        self.app_secret = secrets.token_hex(16)
        self.redis_port = procs.free_port()
        self.redis: procs.Proc | None = None
        self.emulator: procs.Proc | None = None
        self.gateways: list[procs.Proc] = []
        self.receiver_port = 0  # set by the caller once its receiver listens

    @property
    def db_url(self) -> str:
        return f"{self.pg_url}/{self.db_name}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def env(self) -> dict[str, str]:
        """A gateway's environment: the caller's without its GATEWAY_* settings, plus ours."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(
            GATEWAY_CONFIG=str(self.tmp / "soak-apps.toml"),
            GATEWAY_SECRET_KEY=self.secret_key,
            GATEWAY_SIGNING_KEYS=str(self.tmp / "signing-keys.json"),
            GATEWAY_DATABASE_URL=self.db_url,
            GATEWAY_REDIS_URL=self.redis_url,
            GATEWAY_LOG_LEVEL="WARNING",
            SOAK_PARTNER_SECRET=self.partner_secret,
            SOAK_WEBHOOK_SECRET=self.webhook_secret,
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            FORWARDED_ALLOW_IPS="127.0.0.1",  # each simulated user has its own address
        )
        if self.emulator is not None:
            env["GATEWAY_WECHAT_API_BASE"] = f"http://127.0.0.1:{self.emulator.port}"
        return env

    def write_config(self) -> None:
        """The mini-program (on an open platform), a partner with a webhook to the receiver."""
        (self.tmp / "soak-apps.toml").write_text(
            "# written by the soak\n"
            f'[[apps]]\nkey = "{APP_KEY}"\nkind = "miniprogram"\nappid = "{APPID}"\n'
            f'secret = "{self.app_secret}"\nplatform = "{PLATFORM}"\nname = "Soak mini-program"\n\n'
            "[tokens]\naccess_ttl_seconds = 3600\n\n"
            "# many simulated users behind few addresses\n"
            "[throttle]\nfailure_factor = 1000\nregistrations_per_hour = 1000000\n\n"
            f'[[partners]]\nclient_id = "{PARTNER}"\nsecret_env = "SOAK_PARTNER_SECRET"\n'
            f'apps = ["{APP_KEY}"]\nplatforms = ["{PLATFORM}"]\n'
            'scopes = ["accounts:lookup"]\nrate_limit_per_minute = 1000000\n'
            f'webhook_url = "http://127.0.0.1:{self.receiver_port}/hook"\n'
            'webhook_secret_env = "SOAK_WEBHOOK_SECRET"\n\n'
            "[events]\nallow_http_loopback = true\nretry_seconds = [1.0, 2.0, 5.0, 10.0]\n",
            encoding="utf-8",
        )

    # -- start ------------------------------------------------------------------------------

    def start(self) -> None:
        """Database, Redis, keys, emulator, migrations, then the gateways."""
        self.write_config()
        asyncio.run(_admin(self.pg_url, f'CREATE DATABASE "{self.db_name}"'))
        self.start_redis()
        procs.run_checked([*self.gateway_cmd, "keys", "rotate"], self.env(), self.tmp, "keys")
        port = procs.free_port()
        argv = [*self.gateway_cmd, "sandbox", "--port", str(port), "--latency-ms", "0"]
        self.emulator = self.procs.start("emulator", argv, self.env(), port, self.tmp)
        self.procs.wait_ready(self.emulator, "/sandbox/stats")
        procs.run_checked([*self.gateway_cmd, "migrate"], self.env(), self.tmp, "migrate")
        self.gateways = [self.start_gateway(i, procs.free_port()) for i in range(self.count)]

    def start_redis(self) -> None:
        """A redis-server of the soak's own: no persistence, nothing shared."""
        argv = [
            *("redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", str(self.tmp)),
        ]
        self.redis = self.procs.start("redis", argv, os.environ.copy(), self.redis_port, self.tmp)
        _wait_port(self.redis, 20.0)

    def start_gateway(self, index: int, port: int) -> procs.Proc:
        argv = [*self.gateway_cmd, "serve", "--port", str(port), "--workers", "1"]
        proc = self.procs.start(f"gateway-{index}", argv, self.env(), port, self.tmp)
        self.procs.wait_ready(proc, "/readyz", timeout=120)
        return proc

    # -- faults -----------------------------------------------------------------------------

    def kill_gateway(self, index: int) -> procs.Proc:
        """SIGKILL (no goodbye: in-flight requests are lost) and start again on the same port."""
        old = self.gateways[index]
        _kill_now(old)
        self.procs.forget(old)
        self.gateways[index] = self.start_gateway(index, old.port)
        return self.gateways[index]

    def restart_redis(self, down_seconds: float = 1.0) -> None:
        """Our own redis-server killed and started again on its port, empty (no persistence)."""
        assert self.redis is not None
        _kill_now(self.redis)
        self.procs.forget(self.redis)
        time.sleep(down_seconds)
        self.start_redis()

    async def terminate_backends(self) -> int:
        """``pg_terminate_backend`` of every connection to the soak's database, none other."""
        conn = await asyncpg.connect(dsn(self.pg_url, "postgres"), timeout=5)
        try:
            rows = await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                self.db_name,
            )
            return len(rows)
        finally:
            await conn.close()

    def drop(self) -> None:
        if not self.db_name.startswith(DB_PREFIX):
            raise ValueError("the soak drops only its own gateway_soak_* database")
        asyncio.run(_admin(self.pg_url, f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))


def _kill_now(proc: procs.Proc) -> None:
    """SIGKILL to the process group, and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.popen.wait(10)


def _wait_port(proc: procs.Proc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((procs.HOST, proc.port), 1):
            return
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} does not listen on {proc.port}:\n{proc.log_tail()}")


def dsn(base_url: str, database: str) -> str:
    return base_url.replace("postgresql+asyncpg://", "postgresql://", 1) + f"/{database}"


async def _admin(base_url: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn(base_url, "postgres"), timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
