"""The servers and databases a run needs: the emulators, the gateways, the references.

Everything is started through ``procs.Processes``, so the command line can stop all of it in one
``close()`` whatever happens; this module only knows *what* to start and with which environment
and files (the benchmark's app config, the signing keys, the database under test).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from bench import procs
from bench.options import Options, Section

REPO = Path(__file__).resolve().parent.parent

# the benchmark's mini-program, on an open platform so that logins carry a unionid too
APP_KEY = "bench-mp"
TRUSTED_VIEWER = "query BenchViewer { viewer { id } }"
"""The trusted-document row's viewer (bench/trusted.py), listed by the benchmark's manifest;
not the viewer row's text, which stays unlisted."""
APPID = "wxbench0000000001"
PLATFORM = "bench-platform"
# an official account on the same open platform: the merging-login row (bench/merge.py)
OA_KEY = "bench-oa"
OA_APPID = "wxbenchoa0000002"


class Stack:
    """Starts the servers of a run and holds the ones shared by every database section."""

    def __init__(self, opts: Options, tmp: Path, processes: procs.Processes) -> None:
        self.opts = opts
        self.tmp = tmp
        self.procs = processes
        self.python = sys.executable
        # the venv's console script when there is one: what an operator would run
        gateway = shutil.which("gateway", path=str(Path(sys.executable).parent))
        self.gateway_cmd = [gateway] if gateway else [self.python, "-m", "gateway"]
        # 32 hex digits, as WeChat's (a leading "-" would read as an option in argv)
        self.secret = secrets.token_hex(16)
        self.config = tmp / "bench-apps.toml"
        self.documents = tmp / "bench-documents.json"
        self.keys = tmp / "signing-keys.json"
        self.emulator: procs.Proc | None = None
        self.slow_emulator: procs.Proc | None = None
        self.bare: procs.Proc | None = None

    # -- environment ------------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        """The caller's environment without its GATEWAY_* settings, so that they cannot leak in."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(
            GATEWAY_CONFIG=str(self.config),
            GATEWAY_SECRET_KEY=secrets.token_urlsafe(36),
            GATEWAY_SIGNING_KEYS=str(self.keys),
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            FORWARDED_ALLOW_IPS="127.0.0.1",  # the password rows vary X-Forwarded-For
        )
        return env

    def gateway_env(self, url: str, emulator: procs.Proc) -> dict[str, str]:
        """A gateway on database ``url`` calling ``emulator``, plus any ``--gateway-env``."""
        env = self.base_env()
        env.update(
            GATEWAY_DATABASE_URL=url,
            GATEWAY_WECHAT_API_BASE=f"http://127.0.0.1:{emulator.port}",
            **self.opts.gateway_env,
        )
        return env

    def write_config(self) -> None:
        """The GATEWAY_CONFIG every server reads; the access TTL outlives the viewer rows."""
        manifest = {hashlib.sha256(TRUSTED_VIEWER.encode()).hexdigest(): TRUSTED_VIEWER}
        self.documents.write_text(json.dumps(manifest), encoding="utf-8")
        self.config.write_text(
            "# written by the benchmark harness\n"
            "[[apps]]\n"
            f'key = "{APP_KEY}"\n'
            'kind = "miniprogram"\n'
            f'appid = "{APPID}"\n'
            f'secret = "{self.secret}"\n'
            f'platform = "{PLATFORM}"\n'
            'name = "Benchmark mini-program"\n\n'
            "[[apps]]\n"
            f'key = "{OA_KEY}"\n'
            'kind = "official_account"\n'
            f'appid = "{OA_APPID}"\n'
            f'secret = "{self.secret}"\n'
            f'platform = "{PLATFORM}"\n'
            'name = "Benchmark official account"\n\n'
            "[tokens]\n"
            "access_ttl_seconds = 3600  # outlives the run\n\n"
            "# the trusted-document row's viewer (bench/trusted.py)\n"
            "[api]\n"
            f'trusted_documents_file = "{self.documents}"\n\n'
            "# the harness registers its users from one address, many at once\n"
            "[throttle]\n"
            "failure_factor = 1000\n"
            "registrations_per_hour = 1000000\n"
            + ("\n[performance]\nfast_paths = false\n" if self.opts.reference_paths else ""),
            encoding="utf-8",
        )

    # -- the shared servers -----------------------------------------------------------------

    def start(self) -> None:
        """Config, signing keys, both emulators and the bare app: what every section shares."""
        self.write_config()
        env = self.base_env()
        # ``keys rotate`` touches neither the database nor WeChat: a throwaway file, a dead port
        env["GATEWAY_DATABASE_URL"] = f"sqlite+aiosqlite:///{self.tmp / 'keys-only.db'}"
        env["GATEWAY_WECHAT_API_BASE"] = "http://127.0.0.1:9"
        procs.run_checked([*self.gateway_cmd, "keys", "rotate"], env, self.tmp, "gateway keys")
        self.emulator = self.start_emulator("emulator-0ms", 0)
        self.slow_emulator = self.start_emulator(
            f"emulator-{self.opts.latency_ms:g}ms", self.opts.latency_ms
        )
        self.bare = self.start_bare()

    def start_emulator(self, name: str, latency_ms: float) -> procs.Proc:
        """``gateway sandbox``: the WeChat API, answering after ``latency_ms``."""
        port = procs.free_port()
        argv = [*self.gateway_cmd, "sandbox", "--port", str(port), "--latency-ms", str(latency_ms)]
        proc = self.procs.start(name, argv, self.base_env(), port, self.tmp)
        self.procs.wait_ready(proc, "/sandbox/stats")
        return proc

    def start_bare(self) -> procs.Proc:
        """The floor's reference: a bare strawberry app (bench/bare_app.py)."""
        port = procs.free_port()
        argv = [self.python, "-m", "bench.bare_app", "--port", str(port)]
        proc = self.procs.start("bare-strawberry", argv, self.base_env(), port, self.tmp)
        self.procs.wait_ready(proc, "/graphql?query=%7Bping%7D")
        return proc

    # -- one database -----------------------------------------------------------------------

    @contextlib.contextmanager
    def database(self, db: str) -> Iterator[str]:
        """The URL of a fresh database under test; a PostgreSQL one is dropped at the end."""
        if db == "sqlite":
            yield f"sqlite+aiosqlite:///{self.tmp / 'gateway.db'}"
            return
        name = f"gateway_bench_{os.getpid()}_{secrets.token_hex(3)}"
        url = procs.create_database(self.opts.pg_url, name)
        try:
            yield url
        finally:
            procs.drop_database(self.opts.pg_url, name)

    def migrate(self, env: dict[str, str]) -> None:
        """``gateway migrate`` on the database in ``env``, as an operator would before serving."""
        procs.run_checked([*self.gateway_cmd, "migrate"], env, self.tmp, "gateway migrate")

    def start_gateway(self, name: str, env: dict[str, str], workers: int = 1) -> procs.Proc:
        """``gateway serve``, ready when ``/readyz`` says so (database and keys loaded)."""
        port = procs.free_port()
        argv = [*self.gateway_cmd, "serve", "--port", str(port), "--workers", str(workers)]
        proc = self.procs.start(name, argv, env, port, self.tmp)
        self.procs.wait_ready(proc, "/readyz")
        if workers > 1:  # every worker, not only the first to answer
            self.procs.wait_logged(proc, "Application startup complete", workers)
        return proc

    def start_reference(self, section: Section) -> procs.Proc:
        """The minimal login (bench/ref_login.py) on the section's database server.

        On PostgreSQL it shares the section's database; on SQLite it gets a file of its own
        (SQLite allows one writer per file, so the two servers never share a lock).
        """
        assert self.emulator is not None
        port = procs.free_port()
        url = section.url
        if section.db == "sqlite":
            url = f"sqlite+aiosqlite:///{self.tmp / 'reference.db'}"
        argv = [
            *(self.python, "-m", "bench.ref_login", "--port", str(port)),
            *("--database-url", url, "--wechat", f"http://127.0.0.1:{self.emulator.port}"),
            *("--app", APP_KEY, APPID, self.secret),
        ]
        proc = self.procs.start(f"reference-{section.db}", argv, self.base_env(), port, self.tmp)
        self.procs.wait_ready(proc, "/graphql?query=%7Bping%7D")
        return proc

    def stop(self, proc: procs.Proc) -> None:
        """Stop one server now (a row that replaces it); the rest stop with the run."""
        self.procs.stop(proc)
