"""The `gateway` command line from the tests: as a real subprocess (``run_gateway``), or through
``gateway.cli.main`` in a worker thread against a running gateway's database (``cli_for``)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from tests.support.harness import Harness


def clean_environ(**env: str) -> dict[str, str]:
    """This process's environment with no GATEWAY_* variable but the given ones."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return {**base, **env}


def run_gateway(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``gateway ARGS`` in ``cwd`` with only the given GATEWAY_* variables set."""
    return run_gateway_in(clean_environ(**env), *args, cwd=cwd)


def run_gateway_in(
    environ: dict[str, str], *args: str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """``gateway ARGS`` in ``cwd`` with exactly ``environ``."""
    exe = shutil.which("gateway")
    command = [exe] if exe else [sys.executable, "-m", "gateway"]
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@dataclass
class Cli:
    env: dict[str, str]

    async def __call__(self, *args: str) -> tuple[int, str, str]:
        return await asyncio.to_thread(self._main, list(args))

    @staticmethod
    def _main(args: list[str]) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(args)
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
        return code, out.getvalue(), err.getvalue()

    async def subprocess(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway", *args, env=os.environ | self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode()

    async def ok(self, *args: str) -> str:
        code, out, err = await self(*args)
        assert code == 0, (args, out, err)
        return out

    async def json(self, *args: str | None) -> Any:
        return json.loads(await self.ok(*(str(a) for a in args), "--json"))


def cli_for(gw: Harness, monkeypatch: pytest.MonkeyPatch, extra_toml: str = "") -> Cli:
    """The CLI's environment: the running gateway's database, apps, keys (set in this
    process for the in-thread runs, and passed to the subprocess)."""
    settings = gw.config.settings
    assert settings.config is not None
    config_file = Path(settings.config)
    if extra_toml:
        config_file = config_file.with_name("operators.toml")
        config_file.write_text(Path(settings.config).read_text() + extra_toml, encoding="utf-8")
    env = {
        "TEST_CLUB_SECRET": "club-secret-0123456789",
        "GATEWAY_DATABASE_URL": gw.config.database_url,
        "GATEWAY_CONFIG": str(config_file),
        "GATEWAY_SECRET_KEY": "test-secret-key-0123456789-abcdefghijkl",
        "GATEWAY_SIGNING_KEYS": str(settings.signing_keys),
    }
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Cli(env)
