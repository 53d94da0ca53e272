"""Whether a file may have changed, asked of the kernel without touching the file (Linux).

The SQLite deployment's invalidation file (gateway.store.broadcast.FileBroadcast) is checked
on every authenticated request: an ``os.stat`` of its path, ~1 us in a tight loop but 5-10 us
of CPU amid a request (the path walk and the syscall with cold caches). An inotify watch on
the file answers the same question from a queue the kernel fills while the writer's
``write`` is still in its system call: ``maybe_changed`` is a zero-timeout ``poll`` of that
queue. It only gates the stat, never replaces it: any event (ours, another process's, an
overflow) means "stat it and compare, as without a watch"; no event means the file has not
been written, truncated, replaced or removed since the last look.

Anywhere inotify is missing or refuses (another OS, no watches left), ``watch`` answers
``None`` and the caller stats every time. A watch whose file goes away (removed, renamed
over) is dead: ``maybe_changed`` then always says yes, so the caller stats every time too.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from pathlib import Path

_IN_MODIFY = 0x002
_IN_ATTRIB = 0x004
_IN_MOVE_SELF = 0x800
_IN_DELETE_SELF = 0x400
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = 0o2000000
_EVENTS = _IN_MODIFY | _IN_ATTRIB | _IN_MOVE_SELF | _IN_DELETE_SELF


class FileWatch:
    """An inotify watch on one file: its queue polled, drained when it has anything."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._dead = False

    def maybe_changed(self) -> bool:
        """False only when the kernel queued nothing since the last call: the file is as it
        was. True otherwise (then the queue is drained)."""
        if self._dead:
            return True
        if not self._poll.poll(0):
            return False
        self._drain()
        return True

    def _drain(self) -> None:
        """Read every queued event; any that is not a plain write or attribute change (the
        file removed or renamed, the watch dropped, an overflow) ends the watch."""
        try:
            while data := os.read(self._fd, 4096):
                offset = 0
                while offset + 16 <= len(data):
                    mask = int.from_bytes(data[offset + 4 : offset + 8], sys.byteorder)
                    length = int.from_bytes(data[offset + 12 : offset + 16], sys.byteorder)
                    if mask & ~(_IN_MODIFY | _IN_ATTRIB):
                        self.close()
                        return
                    offset += 16 + length
        except BlockingIOError:
            return
        except OSError:
            self.close()

    def close(self) -> None:
        if not self._dead:
            self._dead = True
            with contextlib.suppress(OSError, KeyError):
                self._poll.unregister(self._fd)
            with contextlib.suppress(OSError):
                os.close(self._fd)


def watch(path: Path) -> FileWatch | None:
    """A watch on ``path`` (created empty if missing, as its writers would create it), or
    ``None`` where inotify is not to be had."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes  # here: only an embedded SQLite deployment pays for loading it

        libc = ctypes.CDLL(None, use_errno=True)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
        fd = int(libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
        if fd < 0:
            return None
        if libc.inotify_add_watch(fd, os.fsencode(path), _EVENTS) < 0:
            os.close(fd)
            return None
    except (OSError, AttributeError):
        return None
    return FileWatch(fd)
