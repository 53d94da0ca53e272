"""Every message a person may read exists in both languages (run by .ci/run and the tests).

Two halves:

1. The catalogues (every ``gateway/i18n/locales/<zh_CN|en>/LC_MESSAGES/<domain>.po``, every
   domain, those added later included): both languages hold the same message ids, each with a
   non-empty ``msgstr``, no ``fuzzy`` entry, and the same ``%(name)s`` placeholders as its id.
2. The code against them: the message ids the sources use are in their domain's catalogue,
   and no error's message is an f-string (it would have no id).
   ``errors``: every error class's ``default_message``/``retry_message``, every string literal
   given to an error class's call, and every ``N_("...")`` (Babel's extractor); any domain:
   ``gettext(locale, "<domain>", "...")`` calls with literal arguments; Jinja2 templates under
   ``gateway/**/templates/`` (Babel's extractor with Jinja2's): each id is in one of the
   catalogues of a domain other than ``errors`` and ``sms`` (the code that renders a template
   picks its domain).

Usage: ``python scripts/i18n_check.py`` (exit 1 and one line per problem when incomplete).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("zh_CN", "en")
ERRORS = "errors"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdrf]")
# the domains whose ids come from Python code; templates answer from the others
CODE_DOMAINS = (ERRORS, "sms")


def read_catalogue(path: Path) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=path.parent.parent.name, domain=path.stem)


def domains(locales: Path) -> list[str]:
    return sorted({p.stem for p in locales.glob("*/LC_MESSAGES/*.po")})


def catalogue_problems(locales: Path) -> Iterator[str]:
    """Both languages complete and alike, for every domain found."""
    for domain in domains(locales):
        ids: dict[str, set[str]] = {}
        for folder in FOLDERS:
            path = locales / folder / "LC_MESSAGES" / f"{domain}.po"
            if not path.exists():
                yield f"{domain}: no {folder} catalogue ({path.relative_to(locales)})"
                continue
            ids[folder] = set()
            for message in read_catalogue(path):
                if not message.id:
                    continue  # the header
                ids[folder].add(str(message.id))
                yield from _entry_problems(f"{folder}/{domain}.po", message.id, message)
        if len(ids) == len(FOLDERS):
            zh, en = (ids[f] for f in FOLDERS)
            for missing in sorted(en - zh):
                yield f"zh_CN/{domain}.po: no entry for {missing!r} (en has it)"
            for missing in sorted(zh - en):
                yield f"en/{domain}.po: no entry for {missing!r} (zh_CN has it)"


def _entry_problems(where: str, msgid: object, message: object) -> Iterator[str]:
    string = getattr(message, "string", "")
    if isinstance(msgid, tuple) or isinstance(string, tuple):
        strings = string if isinstance(string, tuple) else (string,)
        ids = msgid if isinstance(msgid, tuple) else (msgid,)
    else:
        strings, ids = (string,), (msgid,)
    if getattr(message, "fuzzy", False):
        yield f"{where}: {ids[0]!r} is fuzzy (review it, then drop the flag)"
    wanted = set(PLACEHOLDER.findall(" ".join(str(i) for i in ids)))
    for text in strings:
        if not text or not str(text).strip():
            yield f"{where}: {ids[0]!r} has no translation"
        elif set(PLACEHOLDER.findall(str(text))) != wanted:
            yield f"{where}: {ids[0]!r} has placeholders {sorted(PLACEHOLDER.findall(str(text)))}"


def _error_classes() -> dict[str, tuple[str, ...]]:
    """Each error class's name and its class-level messages (importing the API registers
    every class)."""
    sys.path.insert(0, str(ROOT))
    import gateway.api.schema  # noqa: F401
    from gateway.errors import all_error_classes

    return {
        c.__name__: tuple(m for m in (c.default_message, getattr(c, "retry_message", "")) if m)
        for c in all_error_classes()
    }


def _message_arguments(call: ast.Call, name: str) -> list[ast.expr]:
    """The message given to an error class: its first positional argument (``InvalidInput``:
    its second, after the field) or ``message=``."""
    position = 1 if name == "InvalidInput" else 0
    candidates = [call.args[position]] if len(call.args) > position else []
    return candidates + [k.value for k in call.keywords if k.arg == "message"]


def _literal_arguments(call: ast.Call, name: str) -> Iterator[str]:
    for node in _message_arguments(call, name):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value


def _gettext_call(call: ast.Call) -> tuple[str, str] | None:
    """``gettext(locale, "domain", "message")`` (gateway.i18n's) with literals."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    if name != "gettext" or len(call.args) != 3:
        return None
    domain, message = call.args[1], call.args[2]
    if not (isinstance(domain, ast.Constant) and isinstance(message, ast.Constant)):
        return None
    if isinstance(domain.value, str) and isinstance(message.value, str):
        return domain.value, message.value
    return None


def formatted_messages(sources: Path) -> Iterator[str]:
    """An f-string (or ``%``/``format``) message given to an error class has no catalogue id:
    what varies goes in named ``%(name)s`` parameters instead."""
    classes = _error_classes()
    for path in sorted(sources.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = isinstance(node, ast.Call) and (
                getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            )
            if not (isinstance(node, ast.Call) and name in classes):
                continue
            for argument in _message_arguments(node, str(name)):
                marked = isinstance(argument, ast.Call) and getattr(argument.func, "id", "") == "N_"
                if isinstance(argument, ast.JoinedStr | ast.BinOp | ast.Call) and not marked:
                    where = f"{path.relative_to(sources.parent)}:{node.lineno}"
                    yield f"{where}: {name}'s message is built in code; use %(name)s parameters"


def code_ids(sources: Path) -> dict[str, set[str]]:
    """The message ids the Python sources use, by domain."""
    classes = _error_classes()
    found: dict[str, set[str]] = {ERRORS: {m for ms in classes.values() for m in ms}}
    for path in sorted(sources.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in classes:
                found[ERRORS].update(_literal_arguments(node, name))
            elif (hit := _gettext_call(node)) is not None:
                found.setdefault(hit[0], set()).add(hit[1])
        for _, message, _, _ in extract_from_file("python", path, keywords={"N_": None}):
            found[ERRORS].add(message if isinstance(message, str) else message[0])
    return found


def template_ids(sources: Path) -> set[str]:
    """The ids of every Jinja2 template under a ``templates`` folder of the sources."""
    ids: set[str] = set()
    for path in sorted(sources.rglob("templates/**/*")):
        if path.suffix not in (".html", ".txt", ".jinja", ".j2", ".xml"):
            continue
        options = {"extensions": "jinja2.ext.i18n", "trimmed": "true"}
        for _, message, _, _ in extract_from_file(
            "jinja2.ext:babel_extract", path, options=options
        ):
            ids.update(m for m in ([message] if isinstance(message, str) else message) if m)
    return ids


def _ids(locales: Path, domain: str) -> set[str]:
    path = locales / "en" / "LC_MESSAGES" / f"{domain}.po"
    if not path.exists():
        return set()
    return {str(m.id if isinstance(m.id, str) else m.id[0]) for m in read_catalogue(path) if m.id}


def code_problems(locales: Path, sources: Path) -> Iterator[str]:
    """Every id the code or a template uses is in its catalogue."""
    for domain, used in sorted(code_ids(sources).items()):
        yield from _missing(domain, used, _ids(locales, domain))
    page_domains = [d for d in domains(locales) if d not in CODE_DOMAINS]
    known = set().union(*(_ids(locales, d) for d in page_domains))
    yield from _missing("/".join(page_domains) or "(no page domain)", template_ids(sources), known)


def _missing(domain: str, used: Iterable[str], known: set[str]) -> Iterator[str]:
    for message in sorted(set(used) - known):
        yield f"{domain}: {message!r} is used in the code but missing from the catalogue"


def problems(locales: Path | None = None, sources: Path | None = None) -> list[str]:
    locales = locales or ROOT / "gateway" / "i18n" / "locales"
    sources = sources or ROOT / "gateway"
    return [
        *catalogue_problems(locales),
        *code_problems(locales, sources),
        *formatted_messages(sources),
    ]


def main() -> int:
    found = problems()
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print(f"i18n: {len(found)} problem(s); see README, 'Languages'", file=sys.stderr)
        return 1
    print("i18n: every message has zh_CN and en")
    return 0


if __name__ == "__main__":
    sys.exit(main())
