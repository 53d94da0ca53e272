"""The code stays in rooms one person can hold in their head: no module of ``gateway/`` grows
past 400 lines (split it by what its parts are for, as ``config/sections.py`` was); and a test
module borrows nothing from another test module (what several share is in ``tests/support``,
so running or changing one test file never drags in another's tests and fixtures)."""

from __future__ import annotations

import ast
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


def _test_modules_imported(source: str) -> list[str]:
    """What ``source`` imports from a test module (``tests.test_x``, ``.test_x``, ``test_x``)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            names = [f"{node.module or ''}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {n for n in names if any(p.startswith("test_") for p in n.split("."))}
    return sorted(found)


def test_the_import_check_sees_each_way_of_importing_a_test_module() -> None:
    source = (
        "from tests.test_a import x\nfrom .test_b import y\nfrom tests import test_c\n"
        "import tests.test_d\nfrom tests.support.web import csrf_token\nimport pytest\n"
    )
    assert _test_modules_imported(source) == [
        "test_b.y",
        "tests.test_a.x",
        "tests.test_c",
        "tests.test_d",
    ]


def test_no_test_module_imports_from_another() -> None:
    tests = Path(__file__).parent
    borrowed = {
        str(path.relative_to(tests)): imported
        for path in sorted(tests.rglob("*.py"))
        if (imported := _test_modules_imported(path.read_text(encoding="utf-8")))
    }
    assert not borrowed, f"import from tests/support instead: {borrowed}"
