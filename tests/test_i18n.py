"""Language negotiation and catalogue loading (gateway.i18n)."""

from __future__ import annotations

import pytest

from gateway import i18n


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("zh-TW,en;q=0.5", "zh-CN"),
        ("fr, en;q=0.1", "en"),
        ("zh;q=0, en", "en"),
        ("en;q=abc, zh", "zh-CN"),
        ("en;q=0.2, zh-Hans;q=0.9", "zh-CN"),
    ],
)
def test_the_best_supported_language_wins(header: str, expected: str) -> None:
    assert i18n.negotiate(header) == expected


@pytest.mark.parametrize("header", [None, "", "fr, de;q=0.5", ",,;q=", "en;q=0", "zh;q=0"])
def test_nothing_usable_answers_the_default(header: str | None) -> None:
    assert i18n.negotiate(header, default="zh-CN") == "zh-CN"
    assert i18n.negotiate(header) == "en"
    assert i18n.DEFAULT_LOCALE == "en"


def test_a_missing_catalogue_answers_the_english_id() -> None:
    assert i18n.gettext("zh-CN", "no-such-domain", "Log in") == "Log in"
