"""What the property tests of hostile input share: a fixed example budget (the same examples
on every run, so CI stays reproducible and fast) and text mixed with characters that break
naive handling (NULs, lone surrogates, non-characters...)."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def budget(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def hostile_text(extra: Sequence[str], max_size: int) -> st.SearchStrategy[str]:
    """Any text, with NULs, lone surrogates, a non-character and ``extra`` mixed in often."""
    hostile = st.sampled_from(["\x00", "\udfff", "\ud800", "\ufffe", *extra])
    return st.lists(st.one_of(st.characters(), hostile), max_size=max_size).map("".join)
