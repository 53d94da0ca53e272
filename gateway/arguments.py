"""The command line's arguments checked before anything runs: text that is not UTF-8 and
numbers or dates outside what the command can do are answered with one line on stderr and exit
status 2, never a traceback and never a silent clamp.

Python hands a program bytes that are not UTF-8 as lone surrogates (``surrogateescape``), which
fail later, wherever the text is first encoded (a print, a database driver). Out-of-range
values are refused by the argument's ``type``, which raises ``BadArgument``: argparse turns
``ValueError`` into a usage message, while this exception passes through ``parse_args`` to
``gateway.cli.main``, which prints its one line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

N = TypeVar("N", int, float)


class BadArgument(Exception):
    """A command-line value the command cannot use; its message is one line."""


def check_utf8(argv: Sequence[str]) -> None:
    """Every argument is text: bytes that are not UTF-8 arrive as lone surrogates."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raw = arg.encode("utf-8", "surrogateescape")
            raise BadArgument(f"an argument is not UTF-8 text: {raw!r}") from None


def integer(option: str, low: int, high: int, unit: str = "") -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``low`` to ``high``."""
    return _bounded(option, int, "a whole number", f"{low} to {high}", low, high, unit)


def number(option: str, low: float, high: float, unit: str = "") -> Callable[[str], float]:
    """An argparse ``type``: a finite number from ``low`` to ``high``."""
    return _bounded(option, float, "a number", f"{low:g} to {high:g}", low, high, unit)


def _bounded(
    option: str, convert: Callable[[str], N], what: str, span: str, low: N, high: N, unit: str
) -> Callable[[str], N]:
    """One rule for both: a value outside the range is refused, never clamped."""
    span += f" {unit}" if unit else ""

    def parse(raw: str) -> N:
        try:
            value = convert(raw)
        except ValueError:
            raise BadArgument(f"{option}: not {what}: {raw!r} ({span})") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise BadArgument(f"{option}: {span}, not {raw}")
        return value

    return parse


def instant(option: str) -> Callable[[str], datetime]:
    """An argparse ``type``: an ISO date or time, UTC when it names no offset, that is a UTC
    instant Python can represent."""

    def parse(raw: str) -> datetime:
        try:
            parsed = datetime.fromisoformat(raw)
            return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except (ValueError, OverflowError):
            raise BadArgument(f"{option}: not an ISO date or time: {raw!r}") from None

    return parse
