"""The trusted-document row (issue 27, item 7): the viewer by hash against the bare floor.

A mini-program's SDK sends its operations as trusted documents: the hash alone, in Apollo's
form (``extensions.persistedQuery.sha256Hash``), which the gateway knows from its list and
runs without parsing or validating (gateway/api/prepared.py). The row sends
``TRUSTED_VIEWER`` that way, with a bearer token (signature check, session read), and compares
it with the bare strawberry app's ``{ ping }`` (bench/bare_app.py: parse and validation
caches on), measured just before. Issue 27's target: at least 1.2x.

The document is listed through the benchmark's manifest (``[api] trusted_documents_file``,
written by bench/stack.py). It is not the viewer row's text (``{ viewer { id } }``), which
stays unlisted, so that row keeps measuring an ordinary document; the viewer by that text is
measured here too, for the detail.
"""

from __future__ import annotations

import hashlib
import json

from bench.measure import Meter, Target, fmt_rate
from bench.options import Options, Section
from bench.stack import TRUSTED_VIEWER, Stack


def by_hash(document: str) -> bytes:
    """The request body a persisted-query client sends: the hash, no text."""
    digest = hashlib.sha256(document.encode()).hexdigest()
    payload = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    return json.dumps(payload, separators=(",", ":")).encode()


class TrustedRow:
    """Viewer by trusted document (hash only) vs the bare strawberry floor."""

    def __init__(self, opts: Options, stack: Stack, meter: Meter) -> None:
        self.opts = opts
        self.stack = stack
        self.meter = meter

    def run(self, s: Section) -> None:
        assert s.gateway is not None
        assert self.stack.bare is not None
        name = "viewer by trusted document (hash) vs bare strawberry"
        with self.meter.row(s.db, name, Target(">=", 1.2)) as row:
            auth = (("Authorization", f"Bearer {s.access_token}"),)
            bare = self.meter.static_rate(
                self.stack.bare.port, b'{"query":"{ ping }"}', b'"pong"', proc=self.stack.bare
            )
            fast = self.meter.static_rate(
                s.gateway.port,
                by_hash(TRUSTED_VIEWER),
                b'"viewer":{"id"',
                headers=auth,
                row=row,
                proc=s.gateway,
            )
            text = json.dumps({"query": "{ viewer { id } }"}).encode()
            plain = self.meter.static_rate(s.gateway.port, text, b'"viewer":{"id"', headers=auth)
            row.measured = fast.rate / bare.rate
            row.detail = (
                f"trusted viewer {fmt_rate(fast)}, bare strawberry {fmt_rate(bare)}; "
                f"the viewer by an unlisted text {fmt_rate(plain)}"
            )
