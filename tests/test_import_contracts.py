"""The accounts contract refuses what it exists to refuse: a copy of the package with imports
of accounts internals planted in ``sessions``, in ``api`` and in two use cases (one inside a
function, one of a module of accounts written after the contract) fails ``lint-imports``,
naming the contract and each import; the same copy unplanted passes. Two runs of the real tool
on the real config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gateway

ROOT = Path(gateway.__file__).parent.parent
CONTRACT = "accounts: outside it, only its public face"
PLANTED = {
    "sessions/service.py": "from gateway.accounts.at_once import account as _planted\n",
    "api/context.py": "from gateway.accounts.tables import Account as _planted\n",
    "wechat_login/service.py": "from gateway.accounts.brand_new import NEW as _planted\n",
    "partners/lookups.py": "def _later() -> None:\n    from gateway.accounts import views\n",
}


def _lint_imports(copy: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on ``copy`` (its pyproject.toml), analysing the copy's package."""
    tool = Path(sys.executable).parent / "lint-imports"
    env = {**os.environ, "PYTHONPATH": str(copy)}
    return subprocess.run(
        [str(tool), "--no-cache"], cwd=copy, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "gateway", tmp_path / "gateway", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_unplanted_copy_keeps_every_contract(copy: Path) -> None:
    run = _lint_imports(copy)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{CONTRACT} (accounts.service, accounts.model) KEPT" in run.stdout


def test_an_import_of_an_accounts_internal_from_outside_is_refused(copy: Path) -> None:
    (copy / "gateway/accounts/brand_new.py").write_text("NEW = 1\n", encoding="utf-8")
    for module, line in PLANTED.items():
        with (copy / "gateway" / module).open("a", encoding="utf-8") as f:
            f.write(line)
    run = _lint_imports(copy)
    assert run.returncode != 0
    assert f"{CONTRACT} (accounts.service, accounts.model) BROKEN" in run.stdout
    for importer, imported in (
        ("gateway.sessions.service", "gateway.accounts.at_once"),
        ("gateway.api.context", "gateway.accounts.tables"),
        ("gateway.wechat_login.service", "gateway.accounts.brand_new"),
        ("gateway.partners.lookups", "gateway.accounts.views"),
    ):
        assert f"{importer} -> {imported}" in run.stdout, run.stdout
