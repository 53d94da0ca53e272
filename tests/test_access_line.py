"""The access line written from its template is byte for byte the JSON formatter's own.

``gateway.logs.JsonFormatter`` writes ``RequestLog``'s records (fields of type ``AccessFields``)
from a template; the same record with its fields as a plain dict takes the generic path, the
reference. Any value the template cannot write exactly (a float that is not finite, a status
that is not an int, fields added or reordered) must fall back to the generic path.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import logs
from gateway.logs import AccessFields, JsonFormatter, _access_line, _access_record
from tests.support.harness import Harness


def _both(fields: dict[str, Any], rid: str, created: float | None = None) -> tuple[str, str]:
    record = _access_record(AccessFields(fields), rid)
    if created is not None:
        record.created = created
    reference = copy.copy(record)
    reference.fields = dict(fields)  # a plain dict: the generic path
    return JsonFormatter().format(record), JsonFormatter().format(reference)


texts = st.text(max_size=24)  # any character: quotes, controls, non-ASCII, lone surrogates


@given(
    rid=texts,
    method=texts,
    path=texts,
    status=st.integers(min_value=-(10**20), max_value=10**20),
    duration=st.floats(allow_nan=True, allow_infinity=True),
    ip=texts,
    created=st.floats(min_value=0, max_value=4e9),
)
def test_the_template_writes_what_the_formatter_writes(
    rid: str, method: str, path: str, status: int, duration: float, ip: str, created: float
) -> None:
    fields = {
        "request_id": rid,
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": duration,
        "client_ip": ip,
    }
    fast, reference = _both(fields, rid, created)
    assert fast == reference


RID = "0123456789abcdef"
FIELDS: dict[str, Any] = {
    "request_id": RID,
    "method": "POST",
    "path": "/graphql",
    "status": 200,
    "duration_ms": 0.25,
    "client_ip": "127.0.0.1",
}


@pytest.mark.parametrize(
    "changed",
    [
        {"status": True},  # a bool: JSON's true
        {"status": 200.0},
        {"duration_ms": float("nan")},
        {"duration_ms": 1},
        {"client_ip": None},
        {"extra": "x"},
    ],
)
def test_anything_else_takes_the_generic_path(changed: dict[str, Any]) -> None:
    fields = {**FIELDS, **changed}
    record = _access_record(AccessFields(fields), RID)
    assert _access_line(record, AccessFields(fields)) is None
    fast, reference = _both(fields, RID)
    assert fast == reference
    reordered = dict(reversed(list(FIELDS.items())))
    assert _access_line(record, AccessFields(reordered)) is None


async def test_a_requests_line_takes_the_template(
    gw: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=logs.access_log.name):
        await gw.client.get("/healthz")
    (record,) = [r for r in caplog.records if r.name == logs.access_log.name]
    fields = record.fields  # type: ignore[attr-defined]
    assert type(fields) is AccessFields
    line = _access_line(record, fields)
    assert line is not None
    reference = copy.copy(record)
    reference.fields = dict(fields)  # a plain dict: the generic path
    assert line == JsonFormatter().format(reference)
