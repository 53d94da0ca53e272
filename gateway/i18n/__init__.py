"""Messages people read, in Chinese (zh-CN) and English, from gettext catalogues.

Each feature owns one catalogue domain (``web`` for the pages the gateway serves, ``errors``
for GraphQL error messages, ``sms`` for texts sent by SMS), kept as ``.po`` files under
``locales/<zh_CN|en>/LC_MESSAGES/<domain>.po``: one file per domain and language, so features
never edit each other's catalogues. Message ids are the English text; the English catalogue
still carries every message (a check in CI holds both languages complete), so a message
reworded in English is reworded in its catalogue, not by editing code alone. Machine-readable
codes never go through here: they do not change with the language. A request's
``Accept-Language`` picks the language (``negotiate``); without a usable one it is
``[i18n] default_locale``, English (``DEFAULT_LOCALE``) unless a deployment chooses Chinese.

Catalogues are compiled from the ``.po`` files in memory on first use (Babel), so no binary
``.mo`` file is committed or built. Babel itself is imported then too: a serving process that
never words a message keeps its ~1.4 MiB (issue 29); the first catalogue's compilation, already
a first-use cost, takes ~10 ms more for it.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babel.support import NullTranslations

LOCALES = ("zh-CN", "en")
"""What the gateway speaks, as BCP 47 tags (``Accept-Language``, ``<html lang>``)."""
DEFAULT_LOCALE = "en"
_DIRECTORY = Path(__file__).parent / "locales"
_FOLDER = {"zh-CN": "zh_CN", "en": "en"}


def negotiate(accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """The best of ``LOCALES`` for an ``Accept-Language`` header (RFC 9110 §12.5.4): highest
    weight first, a bare ``zh`` (or ``zh-Hans``, ``zh-TW``) taken as Chinese, anything else
    or nothing usable: ``default``."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        weight = _weight(params)
        locale = _supported(tag.strip())
        if locale is not None and weight > 0:
            ranked.append((-weight, position, locale))
    return min(ranked)[2] if ranked else default


def _weight(params: str) -> float:
    name, _, value = params.strip().partition("=")
    if name.strip().lower() != "q":
        return 1.0
    try:
        weight = float(value)
    except ValueError:
        return 0.0
    return weight if 0.0 <= weight <= 1.0 else 0.0


def _supported(tag: str) -> str | None:
    primary = tag.lower().split("-")[0]
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    return None


@functools.cache
def translations(locale: str, domain: str) -> NullTranslations:
    """The catalogue of ``domain`` in ``locale`` (one of ``LOCALES``): ``gettext`` and
    ``ngettext`` as the standard library's, usable by Jinja2's i18n extension. A missing
    catalogue answers the English message ids."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import NullTranslations, Translations

    path = _DIRECTORY / _FOLDER[locale] / "LC_MESSAGES" / f"{domain}.po"
    if not path.exists():
        return NullTranslations()
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=_FOLDER[locale], domain=domain)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=domain)


def gettext(locale: str, domain: str, message: str) -> str:
    """``message`` (its English text, the catalogue's id) in ``locale``."""
    return translations(locale, domain).gettext(message)


def catalogue_path(locale: str, domain: str) -> Path:
    """Where ``domain``'s catalogue for ``locale`` lives (tools and the completeness check)."""
    return _DIRECTORY / _FOLDER[locale] / "LC_MESSAGES" / f"{domain}.po"
