"""The code stays in rooms one person can hold in their head: no module of ``gateway/`` grows
past 400 lines (split it by what its parts are for, as ``config/sections.py`` was)."""

from __future__ import annotations

from pathlib import Path

import gateway

LIMIT = 400


def test_no_module_of_the_gateway_is_over_400_lines() -> None:
    root = Path(gateway.__file__).parent
    sizes = {
        str(path.relative_to(root)): len(path.read_text(encoding="utf-8").splitlines())
        for path in root.rglob("*.py")
    }
    assert sizes, "no modules found"
    too_long = {name: size for name, size in sizes.items() if size > LIMIT}
    assert not too_long, f"over {LIMIT} lines: {too_long}"
