"""Rewrite gateway/credentials/common_passwords.txt from zxcvbn's list (a test dependency).

The gateway refuses the 30,000 most common passwords (ASVS 6.2). It reads them from this
plain file, lazily, instead of importing zxcvbn's frequency lists (~14 MiB of every process's
memory for five lists it never uses); ``tests/test_passwords.py`` checks the file still equals
the list. Run ``python scripts/refresh_common_passwords.py`` after upgrading zxcvbn.
"""

from __future__ import annotations

from pathlib import Path

from zxcvbn.frequency_lists import FREQUENCY_LISTS

TARGET = Path(__file__).resolve().parent.parent / "gateway" / "credentials" / "common_passwords.txt"


def render() -> str:
    header = "# The 30,000 most common passwords, from zxcvbn 4.5 (MIT licence), one per line.\n"
    return header + "".join(f"{word}\n" for word in FREQUENCY_LISTS["passwords"])


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
