"""The check that every message has both languages (``scripts/i18n_check.py``, run by .ci/run):
the real catalogues pass it, and each kind of gap planted in a copy fails it."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "gateway" / "i18n" / "locales"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("i18n_check", ROOT / "scripts" / "i18n_check.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = _script()


@pytest.fixture
def locales(tmp_path: Path) -> Path:
    copy = tmp_path / "locales"
    shutil.copytree(LOCALES, copy)
    return copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


ZH_ERRORS = Path("zh_CN/LC_MESSAGES/errors.po")
ID = 'msgid "Wrong username or password."\n'


def test_every_message_of_every_domain_has_both_languages() -> None:
    assert check.problems() == []
    assert {"errors", "sms"} <= set(check.domains(LOCALES))
    assert check.main() == 0


def test_a_missing_chinese_translation_fails(locales: Path) -> None:
    edit(locales / ZH_ERRORS, ID + 'msgstr "用户名或密码错误。"', ID + 'msgstr ""')
    found = check.problems(locales)
    assert found == ["zh_CN/errors.po: 'Wrong username or password.' has no translation"]


def test_a_missing_chinese_entry_fails(locales: Path) -> None:
    edit(locales / ZH_ERRORS, ID + 'msgstr "用户名或密码错误。"\n', "")
    found = check.problems(locales)
    assert "zh_CN/errors.po: no entry for 'Wrong username or password.' (en has it)" in found


def test_a_fuzzy_entry_fails(locales: Path) -> None:
    edit(locales / ZH_ERRORS, ID, "#, fuzzy\n" + ID)
    assert any("is fuzzy" in p for p in check.problems(locales))


def test_a_lost_placeholder_fails(locales: Path) -> None:
    with_wait = "请求过于频繁，请 %(seconds)s 秒后重试。"  # noqa: RUF001
    edit(locales / ZH_ERRORS, with_wait, with_wait.replace(" %(seconds)s 秒后", "稍后"))
    assert any("placeholders" in p and "%(seconds)s" in p for p in check.problems(locales))


def test_a_domain_added_in_one_language_only_fails(locales: Path) -> None:
    page = locales / "en" / "LC_MESSAGES" / "newfeature.po"
    assert not (locales / "zh_CN" / "LC_MESSAGES" / "newfeature.po").exists()
    page.write_text('msgid ""\nmsgstr ""\n\nmsgid "Log in"\nmsgstr "Log in"\n', encoding="utf-8")
    assert any(p.startswith("newfeature: no zh_CN catalogue") for p in check.problems(locales))


def test_a_message_the_code_uses_but_no_catalogue_has_fails(locales: Path, tmp_path: Path) -> None:
    sources = tmp_path / "gateway"
    (sources / "templates").mkdir(parents=True)
    (sources / "feature.py").write_text(
        "from gateway.errors import InvalidInput, N_\n"
        "OTHER = N_('A marked message nobody translated.')\n"
        "def f() -> None:\n"
        "    raise InvalidInput('x', 'A brand new message.')\n"
        "def g(n: int) -> None:\n"
        "    raise InvalidInput('x', f'Built {n} times.')\n",
        encoding="utf-8",
    )
    (sources / "templates" / "page.html").write_text(
        "<p>{{ _('A page text nobody translated.') }}</p>", encoding="utf-8"
    )
    found = " ".join(check.problems(locales, sources))
    assert "'A brand new message.' is used in the code but missing" in found
    assert "'A marked message nobody translated.'" in found
    assert "'A page text nobody translated.'" in found
    assert "gateway/feature.py:6: InvalidInput's message is built in code" in found
