"""The lock check (``scripts/lock.py --check``, run by ``.ci/run``) refuses what it is for: a
requirement of pyproject.toml that its lock leaves unpinned or pins outside its range, and
the two locks pinning a runtime package differently. Offline: it reads files only."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = ("pyproject.toml", "requirements.lock", "requirements-dev.lock", "requirements-build.lock")


def _lock_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_script", ROOT / "scripts" / "lock.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for name in FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def test_the_locks_of_this_checkout_agree_with_pyproject() -> None:
    assert _lock_script().check_files(ROOT) == []


Plant = Callable[[Path], None]
PLANTS: dict[str, tuple[Plant, str]] = {  # tomli-w: a package no lock holds
    "a new dependency without a lock": (
        lambda d: _edit(
            d / "pyproject.toml", '"redis>=5.2",', '"redis>=5.2",\n    "tomli-w>=1.0",'
        ),
        "tomli-w: required by pyproject.toml, missing from requirements.lock",
    ),
    "a raised floor the lock does not meet": (
        lambda d: _edit(d / "pyproject.toml", '"redis>=5.2"', '"redis>=99"'),
        "outside >=99",
    ),
    "a test tool without a lock": (
        lambda d: _edit(d / "pyproject.toml", '"pytest>=8.3",', '"pytest>=8.3",\n    "tomli-w",'),
        "tomli-w: required by pyproject.toml, missing from requirements-dev.lock",
    ),
    "the two locks disagreeing on a runtime pin": (
        lambda d: _edit(d / "requirements-dev.lock", "\nredis==", "\nredis==0.0.1\nredis-was=="),
        "redis: ",
    ),
}


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_the_lock_check_refuses(copy: Path, plant: str) -> None:
    edit, expected = PLANTS[plant]
    edit(copy)
    problems = _lock_script().check_files(copy)
    assert any(expected in p for p in problems), problems
