"""The playground's third-party files: what ``assets/MANIFEST.json`` pins, and where each one is.

Each npm package lives in ``assets/<name>@<version>/`` (``@scope/name`` becomes
``scope-name``), so a file's URL changes with its version and can be cached forever.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).parent / "assets"
MANIFEST = ASSETS / "MANIFEST.json"


@dataclass(frozen=True)
class VendorFile:
    package: str
    version: str
    source: str  # the path inside the npm tarball, below ``package/``
    url_path: str  # below the assets URL: ``react@18.3.1/react.production.min.js``
    load: str | None  # "script", "style" or None (licence texts, package.json)
    sha256: str

    @property
    def path(self) -> Path:
        return ASSETS / self.url_path


def package_dir(name: str, version: str) -> str:
    return f"{name.removeprefix('@').replace('/', '-')}@{version}"


def read_manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return data


def vendor_files(manifest: dict[str, Any] | None = None) -> list[VendorFile]:
    """Every pinned file, in the manifest's order (which is also the load order)."""
    manifest = manifest or read_manifest()
    files = []
    for package in manifest["packages"]:
        directory = package_dir(package["name"], package["version"])
        for entry in package["files"]:
            files.append(
                VendorFile(
                    package=package["name"],
                    version=package["version"],
                    source=entry["from"],
                    url_path=f"{directory}/{entry['from'].rsplit('/', 1)[-1]}",
                    load=entry.get("load"),
                    sha256=entry.get("sha256", ""),
                )
            )
        if package.get("license_text_from"):
            files.append(
                VendorFile(
                    package=package["name"],
                    version=package["version"],
                    source="",
                    url_path=f"{directory}/LICENSE",
                    load=None,
                    sha256=package.get("license_sha256", ""),
                )
            )
    return files


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mismatches(manifest: dict[str, Any] | None = None) -> list[str]:
    """Files that are missing or whose sha256 differs from the manifest (empty: all good)."""
    problems = []
    for f in vendor_files(manifest):
        if not f.path.is_file():
            problems.append(f"{f.url_path}: missing")
        elif sha256_of(f.path) != f.sha256:
            problems.append(f"{f.url_path}: sha256 {sha256_of(f.path)} != manifest {f.sha256}")
    return problems
