"""Trusted documents: the GraphQL documents the gateway knows by their SHA-256.

The SDK's operations are a fixed set (``sdk_documents.json``, generated from
``clients/miniprogram/lib/documents.js`` by ``scripts/sdk_documents.py`` and checked by a
test), and an app may add its own with a manifest, ``[api] trusted_documents_file``: JSON of
``sha256 hex → document``, e.g. written by the app's build step. A client may then send the
hash without the text, in Apollo's form (``extensions.persistedQuery.sha256Hash``; the text
is looked up) or with the text (the hash must match it).

With ``[api] trusted_documents_only = true`` a frontend caller (a frontend access token, or
none) may run only these documents; partner services are not frontends, and sandbox mode
(the playground) never sets it. The list is small and fixed, so an attacker's hand-written
queries (deep, aliased, probing) never reach the parser.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from gateway.config import ConfigError

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
"""Apollo's code for a hash the server does not know: the client may send the text."""
UNTRUSTED = "UNTRUSTED_DOCUMENT"
"""This gateway runs only trusted documents from frontends, and this is not one."""


class DocumentRefused(Exception):
    """A request whose document this gateway will not run; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def digest(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def _checked(entries: Any, source: str) -> dict[str, str]:
    """``hash → document`` whose every hash is the document's own."""
    if not isinstance(entries, dict):
        raise ConfigError(f"{source}: a JSON object of sha256 hex -> document is expected")
    for key, document in entries.items():
        if not isinstance(document, str) or digest(document) != key:
            raise ConfigError(f"{source}: {key[:16]}... is not the sha256 of its document")
    return dict(entries)


def sdk_documents() -> dict[str, str]:
    text = resources.files("gateway.api").joinpath("sdk_documents.json").read_text("utf-8")
    return _checked(json.loads(text), "gateway/api/sdk_documents.json")


def manifest(path: Path) -> dict[str, str]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"api.trusted_documents_file: cannot read {path} ({exc})") from None
    return _checked(entries, "api.trusted_documents_file")


class TrustedDocuments:
    def __init__(self, documents: dict[str, str], *, only: bool) -> None:
        self._documents = documents
        self.only = only

    @classmethod
    def load(cls, path: Path | None, *, only: bool, pages: Iterable[str] = ()) -> TrustedDocuments:
        """The SDK's operations, the gateway's own pages' (``pages``) and the manifest's (a
        bad manifest stops start-up)."""
        own = {digest(document): document for document in pages}
        return cls({**sdk_documents(), **own, **(manifest(path) if path else {})}, only=only)

    def texts(self) -> list[str]:
        return list(self._documents.values())

    def resolve(self, data: dict[str, Any]) -> None:
        """Fill in ``query`` from ``extensions.persistedQuery.sha256Hash`` (Apollo's form);
        with both, the hash must be the text's."""
        extensions = data.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if not isinstance(persisted, dict):
            return
        wanted = persisted.get("sha256Hash")
        if not isinstance(wanted, str):
            raise DocumentRefused(NOT_FOUND, "persistedQuery needs a sha256Hash.")
        query = data.get("query")
        if isinstance(query, str):
            if digest(query) != wanted.lower():
                raise DocumentRefused(NOT_FOUND, "sha256Hash is not the query's hash.")
            return
        known = self._documents.get(wanted.lower())
        if known is None:
            raise DocumentRefused(NOT_FOUND, "PersistedQueryNotFound")
        data["query"] = known

    def admit(self, query: str | None, frontend: bool) -> None:
        """In trusted-only mode, a frontend's document must be one of the list."""
        if not (self.only and frontend):
            return
        if query is None or digest(query) not in self._documents:
            raise DocumentRefused(
                UNTRUSTED, "This gateway runs only the SDK's and the app's listed documents."
            )
