"""Reference (c): the raw argon2id verify rate at the gateway's default parameters (one of
OWASP's pairs, gateway.config.PasswordsModel), on a number of threads.

argon2-cffi releases the GIL while it hashes, so N threads measure what N cores can verify.
The bench gives it as many threads as the gateway's hashing pool has (one fewer than the
cores), so the row's ratio is what the gateway adds around the hashing.
"""

from __future__ import annotations

import os
import threading
import time

from argon2 import PasswordHasher

from gateway.config import PasswordsModel

# what the benchmarked gateway hashes with: its configuration has no [passwords] table
DEFAULTS = PasswordsModel()


def verify_rate(duration: float, threads: int | None = None) -> tuple[float, float]:
    """(verifies per second over all threads, milliseconds per verify in one thread)."""
    threads = threads or os.cpu_count() or 1
    hasher = PasswordHasher(
        time_cost=DEFAULTS.time_cost,
        memory_cost=DEFAULTS.memory_kib,
        parallelism=DEFAULTS.parallelism,
    )
    password = "correct horse battery staple"
    stored = hasher.hash(password)
    hasher.verify(stored, password)  # warm: allocate once before timing
    counts = [0] * threads
    start = time.perf_counter()
    deadline = start + duration

    def loop(index: int) -> None:
        while time.perf_counter() < deadline:
            hasher.verify(stored, password)
            counts[index] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    total = sum(counts)
    return total / elapsed, 1000 * elapsed * threads / max(total, 1)


if __name__ == "__main__":
    rate, ms = verify_rate(5.0)
    print(f"argon2id verify: {rate:.1f}/s on {os.cpu_count()} threads, {ms:.1f} ms each")
