"""The committed schema.graphql is what the code serves: frontends generate types from it."""

from __future__ import annotations

from pathlib import Path

from gateway.api.schema import export_sdl

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"
REGENERATE = "gateway schema --output schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    assert SCHEMA_FILE.is_file(), f"schema.graphql is missing: run `{REGENERATE}`"
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == export_sdl(), (
        f"schema.graphql is out of date with the code: run `{REGENERATE}` and commit it"
    )


def test_schema_file_is_nonempty_and_newline_terminated() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    assert "type Query" in committed
    assert "type Mutation" in committed
    assert committed.endswith("\n")
    assert not committed.endswith("\n\n")
