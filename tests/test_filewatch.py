"""The SQLite invalidation file's inotify gate (gateway.store.filewatch) hears what the stat
hears: the same script of writes (ours, another process's, a rotation, the file removed and
made again) delivers the same invalidations with the watch as with a stat on every check,
and with the watch an unchanged file is not stat'ed at all."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from gateway.store import broadcast, filewatch
from gateway.store.broadcast import FileBroadcast

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def other_process_writes(path: Path) -> None:
    """What an operator command's commit does to the file (FileBroadcast.after_commit)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)


async def script(path: Path, watched: bool, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Each step, then one check (a request's): what the listener heard, and the stats."""
    monkeypatch.setattr(broadcast, "FILE_WATCH", watched)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # as a watch makes it
    channel = FileBroadcast(path)
    assert (channel._watch is not None) is watched
    heard: list[object] = []
    channel.listen(lambda keys: heard.append(sorted(keys) if keys is not None else None))
    stats = 0
    original = channel._stat

    def counted() -> tuple[int, int, int] | None:
        nonlocal stats
        stats += 1
        return original()

    monkeypatch.setattr(channel, "_stat", counted)

    def check(step: str) -> None:
        before = stats
        assert channel.trusted
        heard.append((step, stats - before if watched else "stat"))

    check("quiet")
    check("quiet again")
    await channel.after_commit(frozenset({"s:1"}))
    check("our own write")
    check("quiet after ours")
    other_process_writes(path)
    check("another process")
    os.truncate(path, 0)
    check("truncated")
    os.unlink(path)
    check("removed")
    other_process_writes(path)
    check("made again")
    other_process_writes(path)
    check("written after")
    await channel.close()
    return heard


async def test_the_watch_hears_what_the_stat_hears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = await script(tmp_path / "a.invalidations", False, monkeypatch)
    gated = await script(tmp_path / "b.invalidations", True, monkeypatch)
    deliveries = [e for e in gated if not isinstance(e, tuple)]
    assert deliveries == [e for e in reference if not isinstance(e, tuple)]
    assert deliveries.count(None) == 5  # another process, truncated, removed, made, written
    stats: dict[object, object] = dict(e for e in gated if isinstance(e, tuple))
    assert stats["quiet"] == stats["quiet again"] == stats["quiet after ours"] == 0
    assert stats["another process"] == stats["our own write"] == 1
    assert stats["written after"] == 1  # the watch died with its file: a stat every time


async def test_without_inotify_every_check_stats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where inotify cannot be had (here: its functions missing), the stat path stands."""
    monkeypatch.setattr(filewatch, "watch", lambda path: None)
    channel = FileBroadcast(tmp_path / "c.invalidations")
    heard: list[object] = []
    channel.listen(heard.append)
    assert channel.trusted
    other_process_writes(tmp_path / "c.invalidations")
    assert channel.trusted
    assert heard == [None]
