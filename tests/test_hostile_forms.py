"""The form and query-string endpoints under arbitrary input (issue 30): ``/oauth/token`` with
NULs, lone surrogates, undecodable bytes and stray escapes in the form and in Basic credentials,
on SQLite and PostgreSQL (which refuses a NUL in text). Whatever comes in: an RFC 6749 error
object, never a 5xx, nothing logged as an error. The sandbox's query-string helpers likewise.
The example budget is fixed so the suite stays fast."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.harness import Configure, running
from tests.support.hostile import budget, hostile_text
from tests.support.sandbox import sandbox

BUDGET = budget(150)
TEXT = hostile_text(["%00", "%ED%A0%80", "%", ":"], max_size=24)
# what a client may put on the wire: any text (lone surrogates included, as raw bytes) or bytes
RAW = st.one_of(TEXT.map(lambda s: s.encode("utf-8", "surrogatepass")), st.binary(max_size=24))
FIELDS = ["grant_type", "client_id", "client_secret", "scope"]
OAUTH_ERRORS = {"invalid_client", "invalid_request", "unsupported_grant_type", "invalid_scope"}


@st.composite
def token_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A client-credentials request with hostile credentials in the form or in Basic."""
    form = {"grant_type": b"client_credentials"}
    form.update(draw(st.dictionaries(st.sampled_from(FIELDS), RAW, max_size=4)))
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if draw(st.booleans()):
        form.pop("client_secret", None)
        pair = draw(RAW) + b":" + draw(RAW) if draw(st.booleans()) else draw(RAW)
        headers["authorization"] = "Basic " + base64.b64encode(pair).decode()
    body = "&".join(f"{k}={quote_from_bytes(v)}" for k, v in form.items())
    return {"content": body.encode(), "headers": headers}


def run_examples(
    strategy: st.SearchStrategy[Any], check: Callable[[Any], Coroutine[Any, Any, None]]
) -> Coroutine[Any, Any, None]:
    """Hypothesis runs sync functions: it runs in a thread, each example on the test's loop."""
    loop = asyncio.get_running_loop()

    @BUDGET
    @given(example=strategy)
    def examples(example: Any) -> None:
        asyncio.run_coroutine_threadsafe(check(example), loop).result(timeout=30)

    return asyncio.to_thread(examples)


def assert_rfc_error(answer: httpx.Response) -> None:
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] in OAUTH_ERRORS, answer.text
    assert answer.headers["cache-control"] == "no-store"


async def test_token_endpoint_under_hostile_credentials(
    database_url: str, configure: Configure, caplog: pytest.LogCaptureFixture
) -> None:
    # every example fails authentication once: keep the throttle out of the way
    config = configure(database_url, throttle={"failure_factor": 1000})
    async with running(config) as gw:

        async def check(request: dict[str, Any]) -> None:
            assert_rfc_error(await gw.client.post("/oauth/token", **request))

        with caplog.at_level(logging.ERROR):
            await run_examples(token_requests(), check)
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
        assert (await gw.client.get("/readyz")).status_code == 200


@pytest.mark.parametrize(
    "client_id",
    ["crm\x00", "\x00", "\ud800", "a" * 10_000, "\x7f", "crm\n"],
    ids=["nul", "only-nul", "surrogate", "long", "del", "newline"],
)
async def test_unusable_client_ids_are_invalid_clients(
    database_url: str, configure: Configure, client_id: str
) -> None:
    """By form and by Basic, an id no partner can have is an unknown client: 401 invalid_client."""
    async with running(configure(database_url)) as gw:
        raw = client_id.encode("utf-8", "surrogatepass")
        form = f"grant_type=client_credentials&client_id={quote_from_bytes(raw)}"
        as_form = await gw.client.post(
            "/oauth/token",
            content=f"{form}&client_secret=x".encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        as_basic = await gw.client.post(
            "/oauth/token",
            content=b"grant_type=client_credentials",
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "authorization": "Basic " + base64.b64encode(raw + b":x").decode(),
            },
        )
        for answer in (as_form, as_basic):
            assert_rfc_error(answer)
            assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")


QUERIES = st.dictionaries(st.sampled_from(["app", "user", "scope", "snapshot", "phone"]), RAW)


async def test_sandbox_helpers_under_hostile_query_strings(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``/sandbox/code`` and its siblings: a 4xx with a JSON body or a code, never a 5xx."""
    async with sandbox() as gw:

        async def check(example: tuple[str, dict[str, bytes]]) -> None:
            path, query = example
            qs = "&".join(f"{k}={quote_from_bytes(v)}" for k, v in query.items())
            answer = await gw.client.get(f"{path}?{qs}")
            assert answer.status_code < 500, answer.text
            answer.json()

        paths = st.sampled_from(["/sandbox/code", "/sandbox/phone-code", "/sandbox/open-data"])
        with caplog.at_level(logging.ERROR):
            await run_examples(st.tuples(paths, QUERIES), check)
        assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
