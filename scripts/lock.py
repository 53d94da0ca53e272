"""The three lock files, from ``pyproject.toml``: regenerate them, or check that they and the
installed environment agree with it.

- ``requirements.lock``: the runtime dependencies (the Dockerfile installs it, hash-checked);
- ``requirements-dev.lock``: the same runtime pins plus the test tools (``.[test]``): what the
  README's test command and ``.ci/run`` install;
- ``requirements-build.lock``: the build backend (hatchling, and ``editables`` for ``pip
  install -e``), installed beside them so that no build step downloads an unpinned version.

``python scripts/lock.py`` regenerates all three with a pinned pip-tools in its own venv
(``.lock-venv``), keeping every pin that still satisfies ``pyproject.toml``;
``--upgrade`` (or ``--upgrade-package NAME``) moves pins forward. ``--check`` runs offline
(CI): every requirement of ``pyproject.toml`` is pinned in its lock, within its range; the
runtime pins are the same in both locks; and the running environment holds exactly the
locked versions (an install that ignored the locks fails here, not at a distant type check).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIP_TOOLS = "pip-tools==7.6.2"
RUNTIME, DEV, BUILD = "requirements.lock", "requirements-dev.lock", "requirements-build.lock"
COMMON = ["--generate-hashes", "--strip-extras", "--no-emit-index-url", "--no-emit-find-links"]
COMMANDS = {
    RUNTIME: [*COMMON],
    DEV: [*COMMON, "--extra", "test", "--constraint", RUNTIME],
    BUILD: [*COMMON, "--build-deps-for=wheel", "--build-deps-for=editable", "--only-build-deps"],
}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)
# in the environment but in no lock: the installer itself and the project
_UNLOCKED = {"pip", "setuptools", "wechat-identity-gateway"}


def pins(lock: str, root: Path = ROOT) -> dict[str, str]:
    """A lock file's ``name==version`` lines, by canonical name."""
    text = (root / lock).read_text()
    return {canonicalize_name(name): version for name, version in _PIN.findall(text)}


def _unpinned(requirements: list[str], locked: dict[str, str], lock: str) -> list[str]:
    problems = []
    for line in requirements:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # not for this platform
        version = locked.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name}: required by pyproject.toml, missing from {lock}")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}=={version} in {lock} is outside {req.specifier}")
    return problems


def check_files(root: Path = ROOT) -> list[str]:
    """What disagrees between pyproject.toml and the three locks."""
    project = tomllib.loads((root / "pyproject.toml").read_text())
    runtime, dev, build = pins(RUNTIME, root), pins(DEV, root), pins(BUILD, root)
    problems = _unpinned(project["project"]["dependencies"], runtime, RUNTIME)
    tests = project["project"]["optional-dependencies"]["test"]
    problems += _unpinned(project["project"]["dependencies"] + tests, dev, DEV)
    problems += _unpinned(project["build-system"]["requires"], build, BUILD)
    return problems + [
        f"{name}: {version} in {RUNTIME} but {dev.get(name)} in {DEV}"
        for name, version in runtime.items()
        if dev.get(name) != version
    ]


def check_environment(root: Path = ROOT) -> list[str]:
    """The packages of the running environment that are not at their locked version."""
    problems = []
    locked = pins(DEV, root) | pins(BUILD, root)
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name not in _UNLOCKED and locked.get(name) != dist.version:
            wanted = locked.get(name, "no version (not in the locks)")
            problems.append(f"installed {name}=={dist.version}, locked {wanted}")
    return problems


def regenerate(upgrade: list[str]) -> None:
    """Run pip-compile for each lock from a venv of its own with a pinned pip-tools."""
    tools = ROOT / ".lock-venv"
    if not (tools / "bin" / "pip-compile").exists():
        venv.create(tools, with_pip=True)
        pip = [str(tools / "bin" / "pip"), "install", "-q", PIP_TOOLS]
        subprocess.run(pip, check=True)  # noqa: S603 (our own venv, fixed arguments)
    for lock, options in COMMANDS.items():
        command = [str(tools / "bin" / "pip-compile"), "-q", *options, *upgrade]
        command += ["--output-file", lock, "pyproject.toml"]
        subprocess.run(command, check=True, cwd=ROOT)  # noqa: S603


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="check only (offline)")
    parser.add_argument("--upgrade", action="store_true", help="move every pin forward")
    parser.add_argument("--upgrade-package", action="append", default=[], metavar="NAME")
    args = parser.parse_args()
    if args.check:
        problems = check_files() + check_environment()
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("the locks disagree: run 'python scripts/lock.py'", file=sys.stderr)
        return 1 if problems else 0
    upgrade = ["--upgrade"] if args.upgrade else []
    upgrade += [f"--upgrade-package={name}" for name in args.upgrade_package]
    regenerate(upgrade)
    return 0


if __name__ == "__main__":
    sys.exit(main())
