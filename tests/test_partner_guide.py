"""The partner guide (docs/partner-events.md) tells the truth: its catalogue is what the
gateway's rendering produces (``scripts/partner_event_examples.py --check``), it has one
example per event type, and each example has the shape partners rely on."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from gateway.outbox import EventType

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "partner-events.md"


def _script() -> ModuleType:
    path = ROOT / "scripts" / "partner_event_examples.py"
    spec = importlib.util.spec_from_file_location("partner_event_examples", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def examples() -> dict[str, dict[str, Any]]:
    """Each catalogue section's JSON example, by the type in its heading."""
    text = GUIDE.read_text(encoding="utf-8")
    found = re.findall(r"### `([a-z_.]+)`\n\n.*?\n\n```json\n(.*?)\n```", text, re.DOTALL)
    return {name: json.loads(body) for name, body in found}


def test_the_catalogue_is_what_the_gateway_renders() -> None:
    assert _script().main(["--check"]) == 0, "run: python scripts/partner_event_examples.py"


def test_one_example_per_event_type_with_the_shape_partners_rely_on() -> None:
    shown = examples()
    assert list(shown) == [t.value for t in EventType]
    for name, body in shown.items():
        assert set(body) == {"type", "timestamp", "data"}
        assert body["type"] == name
        assert body["timestamp"].endswith("Z")
        assert "accountId" in body["data"]
    merged = shown["account.merged"]["data"]
    assert merged["accountId"] == merged["mergedId"] != merged["survivorId"]
    assert shown["account.deleted"]["data"] == {"accountId": merged["accountId"]}


def test_the_readme_links_the_guide() -> None:
    assert "(docs/partner-events.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
