"""``gateway/api/sdk_documents.json``: the mini-program SDK's GraphQL documents by SHA-256,
the gateway's built-in trusted documents (``gateway.api.trusted``).

Node reads ``clients/miniprogram/lib/documents.js`` (the strings exactly as the SDK sends
them, its template pieces filled in), so the list is generated from the SDK's source, never
copied by hand. ``--check`` fails when the file differs from what the SDK's source gives (a
test runs it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "clients" / "miniprogram" / "lib" / "documents.js"
TARGET = ROOT / "gateway" / "api" / "sdk_documents.json"
_PRINT = "process.stdout.write(JSON.stringify(Object.values(require(process.argv[1]))))"


def generated(source: Path = SOURCE) -> str:
    """The file's text: every exported string of ``documents.js``, keyed by its sha256."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("node is needed to read the SDK's documents (Node 20, as its tests)")
    command = [node, "-e", _PRINT, str(source)]
    # fixed arguments: our own script and the repository's file
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout  # noqa: S603
    documents = [d for d in json.loads(out) if isinstance(d, str)]
    by_hash = {hashlib.sha256(d.encode("utf-8")).hexdigest(): d for d in documents}
    return json.dumps(dict(sorted(by_hash.items())), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args(argv)
    text = generated()
    if args.check:
        if TARGET.read_text(encoding="utf-8") != text:
            print(
                f"{TARGET.relative_to(ROOT)} is stale: run scripts/sdk_documents.py",
                file=sys.stderr,
            )
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
