"""Password hashing with argon2id (OWASP parameters or stronger), off the event loop.

argon2-cffi releases the GIL while it hashes, so a small thread pool keeps password logins
from stalling every other request. The pool has one thread fewer than the cores, so the event
loop always keeps one, and admission is bounded: when every thread is busy and the queue is
full, a password request is refused at once (``TemporarilyUnavailable`` with a retry time)
instead of making every request wait behind a flood.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.errors import TemporarilyUnavailable, WeakPassword
from gateway.metrics import HASHING_REFUSED

T = TypeVar("T")
MIN_LENGTH = 8
MAX_LENGTH = 128  # bounds the hashing cost an attacker can ask for


@dataclass(frozen=True)
class HashParameters:
    """argon2id's cost and the admission bounds, as ``[passwords]`` validated them
    (``gateway.config.PasswordsModel``: OWASP's pairs are the floor; the defaults are there)."""

    time_cost: int
    memory_kib: int
    parallelism: int
    max_concurrent: int  # 0: one fewer than the cores, at least one
    max_waiting: int


def default_threads() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


class PasswordHashing:
    def __init__(self, params: HashParameters) -> None:
        self._hasher = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
        )
        self._threads = params.max_concurrent or default_threads()
        self._capacity = self._threads + params.max_waiting
        self._admitted = 0
        self._pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="argon2")
        self._dummy = _dummy_hash(self._hasher)

    async def hash(self, password: str) -> str:
        return await self._run(partial(self._hasher.hash, password))

    async def verify(self, stored: str | None, password: str) -> tuple[bool, str | None]:
        """(matches, new hash when the parameters changed). ``stored=None`` costs the same time,
        against a dummy hash, so an unknown username cannot be told apart by timing."""
        return await self._run(partial(self._verify_sync, stored, password))

    def _verify_sync(self, stored: str | None, password: str) -> tuple[bool, str | None]:
        try:
            self._hasher.verify(stored or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False, None
        if stored is None:
            return False, None
        if self._hasher.check_needs_rehash(stored):
            return True, self._hasher.hash(password)
        return True, None

    async def _run(self, call: Callable[[], T]) -> T:
        if self._admitted >= self._capacity:
            HASHING_REFUSED.inc()
            raise TemporarilyUnavailable(
                "Too many password checks at once; retry in a moment.",
                retry_after=1.0,
            )
        self._admitted += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        finally:
            self._admitted -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A well-formed hash with the current parameters that no password matches: verifying
    against it costs a full argon2 run, like a real one. Written, not computed: hashing at
    startup would put argon2's working memory on the main thread's heap for good."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii").rstrip("=")

    salt = b64(secrets.token_bytes(hasher.salt_len))
    digest = b64(secrets.token_bytes(hasher.hash_len))
    m, t, p = hasher.memory_cost, hasher.time_cost, hasher.parallelism
    return f"$argon2id$v=19$m={m},t={t},p={p}${salt}${digest}"


COMMON_PASSWORDS = Path(__file__).with_name("common_passwords.txt")


@cache
def _common_passwords() -> bytes:
    """zxcvbn's 30,000 most common passwords (scripts/refresh_common_passwords), read when a
    password is first set, as one newline-delimited block of ~240 KB: a set of 30,000 strings
    was 3.6 MiB, and the lookup is one substring search of a block that size (tens of us,
    beside a hash of milliseconds)."""
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    entries = (line for line in lines if line and not line.startswith("#"))
    return ("\n" + "\n".join(entries) + "\n").encode()


def is_common(folded: str) -> bool:
    """Whether a normalised password is one of the list's lines, whole."""
    return "\n" not in folded and f"\n{folded}\n".encode() in _common_passwords()


def check_policy(password: str, username: str) -> None:
    """Length, not a common password, not the username (ASVS 6.2)."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(
            "Choose another password: at least %(count)s characters are required.",
            count=MIN_LENGTH,
        )
    if len(password) > MAX_LENGTH:
        raise WeakPassword(
            "Choose another password: at most %(count)s characters are allowed.",
            count=MAX_LENGTH,
        )
    folded = unicodedata.normalize("NFKC", password).casefold()
    if is_common(folded):
        raise WeakPassword("Choose another password: this is one of the most common passwords.")
    if username and username in folded:
        raise WeakPassword("Choose another password: it must not contain the username.")
