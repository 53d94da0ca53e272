"""Maintainers: fetch the playground's pinned npm files and check them against their hashes.

    .venv/bin/python scripts/refresh_playground_assets.py           # re-download, verify
    .venv/bin/python scripts/refresh_playground_assets.py --check   # offline: files vs MANIFEST
    .venv/bin/python scripts/refresh_playground_assets.py --update  # after bumping a version

Versions are pinned in ``gateway/playground/assets/MANIFEST.json``. Every tarball is checked
against the registry's ``dist.integrity`` (sha512) and every extracted file against the
manifest's sha256. Without ``--update`` a difference is an error (a pinned version must never
change); with it, the manifest takes the new integrity and hashes and stale version
directories are removed. Review the diff, run the browser tests, commit.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import shutil
import sys
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.playground import manifest as m


def _get(url: str) -> bytes:
    if not url.startswith("https://"):
        raise SystemExit(f"refusing a non-https URL: {url}")
    with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 (https only, above)
        body: bytes = answer.read()
    return body


def _tarball(registry: str, package: dict[str, Any]) -> bytes:
    name = urllib.parse.quote(package["name"], safe="@")
    meta = json.loads(_get(f"{registry}/{name}/{package['version']}"))
    integrity: str = meta["dist"]["integrity"]
    pinned = package.get("integrity")
    if pinned and pinned != integrity and not ARGS.update:
        raise SystemExit(f"{package['name']}@{package['version']}: registry integrity changed")
    package["integrity"] = integrity
    package["tarball"] = meta["dist"]["tarball"]
    body = _get(meta["dist"]["tarball"])
    algorithm, _, digest = integrity.partition("-")
    if base64.b64encode(hashlib.new(algorithm, body).digest()).decode() != digest:
        raise SystemExit(f"{package['name']}: tarball does not match {integrity}")
    return body


def _store(target: Path, data: bytes, entry: dict[str, Any], key: str = "sha256") -> None:
    digest = hashlib.sha256(data).hexdigest()
    if entry.get(key) and entry[key] != digest and not ARGS.update:
        raise SystemExit(f"{target}: sha256 {digest} differs from the manifest's {entry[key]}")
    entry[key] = digest
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    print(f"  {target.relative_to(m.ASSETS)}  {digest[:16]}  {len(data):>8} bytes")


def refresh(manifest: dict[str, Any]) -> None:
    registry = manifest["registry"].rstrip("/")
    licences: dict[str, bytes] = {}
    for package in manifest["packages"]:
        print(f"{package['name']}@{package['version']}")
        directory = m.ASSETS / m.package_dir(package["name"], package["version"])
        with tarfile.open(fileobj=io.BytesIO(_tarball(registry, package))) as tar:
            for entry in package["files"]:
                member = tar.extractfile(f"package/{entry['from']}")
                if member is None:
                    raise SystemExit(f"{package['name']}: no {entry['from']} in the tarball")
                data = member.read()
                _store(directory / entry["from"].rsplit("/", 1)[-1], data, entry)
                if entry["from"] == "LICENSE":
                    licences[package["name"]] = data
        source = package.get("license_text_from")
        if source:
            _store(directory / "LICENSE", licences[source], package, "license_sha256")
    if ARGS.update:
        keep = {m.package_dir(p["name"], p["version"]) for p in manifest["packages"]}
        for stale in m.ASSETS.iterdir():
            if stale.is_dir() and stale.name not in keep:
                print(f"removing {stale.name}")
                shutil.rmtree(stale)
    m.MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    manifest = m.read_manifest()
    if ARGS.check:
        problems = m.mismatches(manifest)
        print("\n".join(problems) or f"{len(m.vendor_files(manifest))} files match the manifest")
        raise SystemExit(1 if problems else 0)
    refresh(manifest)
    problems = m.mismatches(manifest)
    if problems:
        raise SystemExit("\n".join(problems))
    print("all files verified")


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
mode = parser.add_mutually_exclusive_group()
mode.add_argument("--check", action="store_true", help="offline: compare the files with MANIFEST")
mode.add_argument("--update", action="store_true", help="accept new hashes (after a version bump)")
ARGS = parser.parse_args()

if __name__ == "__main__":
    main()
