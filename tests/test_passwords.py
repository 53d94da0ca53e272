"""Username/password accounts through GraphQL over HTTP: register, log in, change the password.

ASVS 6.2 (policy), 6.3.8 (no enumeration, same answer and same work for an unknown user),
11.4 (argon2id, transparent rehash when the parameters change), and the event loop never
stalling while argon2 runs. The helpers (also used by test_throttle.py and test_linking.py) are
in tests/support/passwords.py.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlmodel import col

from gateway.accounts.tables import Credential, Identity
from tests.support.harness import Configure, Harness, running
from tests.support.passwords import (
    CHANGE_PASSWORD,
    GOOD_PASSWORD,
    change_password,
    fullwidth,
    password_login,
    register,
    registered,
    viewer_id,
)

LENIENT = {"failure_factor": 1000}  # throttling out of the way of tests about something else


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
async def lenient(database_url: str, configure: Configure) -> AsyncIterator[Harness]:
    async with running(configure(database_url, throttle=LENIENT)) as harness:
        yield harness


async def stored_hash(gw: Harness, username: str) -> str:
    async with gw.app.state.services.db.reader() as s:
        query = (
            select(col(Credential.password_hash))
            .join(Identity, col(Identity.id) == col(Credential.identity_id))
            .where(col(Identity.subject) == username)
        )
        return str((await s.execute(query)).scalar_one())


# -- register and log in -----------------------------------------------------------------------


async def test_register_then_log_in_reaches_the_same_account(gw: Harness) -> None:
    created = await registered(gw, "alice")
    assert created["isNewAccount"] is True
    assert created["accessToken"].count(".") == 2
    assert [(i["kind"], i["label"]) for i in created["account"]["identities"]] == [
        ("USERNAME", "alice")
    ]
    assert await viewer_id(gw, created["accessToken"]) == created["account"]["id"]

    login = await password_login(gw, "alice")
    assert login["__typename"] == "LoginSuccess", login
    assert login["isNewAccount"] is False
    assert login["account"]["id"] == created["account"]["id"]
    assert login["refreshToken"] != created["refreshToken"]
    assert await viewer_id(gw, login["accessToken"]) == created["account"]["id"]

    lookalike = await password_login(gw, fullwidth("ALICE"))  # normalised as at register
    assert lookalike["__typename"] == "LoginSuccess", lookalike
    assert lookalike["account"]["id"] == created["account"]["id"]


async def test_wrong_password_and_unknown_username_get_the_identical_answer(gw: Harness) -> None:
    await registered(gw, "bob")
    wrong_password = await password_login(gw, "bob", "not-the-password-1")
    unknown_user = await password_login(gw, "nobody-here", "not-the-password-1")
    assert wrong_password["__typename"] == "InvalidCredentialsError"
    assert wrong_password["code"] == "INVALID_CREDENTIALS"
    assert unknown_user == wrong_password  # typename, code and message: nothing tells them apart
    assert "bob" not in wrong_password["message"]


async def test_weak_passwords_are_refused_and_create_nothing(gw: Harness) -> None:
    weak = {
        "seven chars": "Ab3$xyz",
        "over 128": "Xq9!" * 32 + "z",
        "common": "password1",
        "common, keyboard walk": "qwertyuiop",
        "common, any case": "IloveYou",
        "is the username": "carol-smith",
        "contains the username": "my-Carol-Smith-2024",
    }
    for why, password in weak.items():
        result = await register(gw, "Carol-Smith", password)
        assert (result["__typename"], result["code"], result["field"]) == (
            "WeakPasswordError",
            "WEAK_PASSWORD",
            "password",
        ), why
        assert result["message"], why
    login = await password_login(gw, "carol-smith", "my-Carol-Smith-2024")
    assert login["code"] == "INVALID_CREDENTIALS"  # nothing was registered


async def test_only_a_whole_common_password_is_refused(gw: Harness) -> None:
    """The list is one block of lines: a password is common when it is a whole line, not when
    it is part of one (``ssword12``) or spans two lines (``password1``, newline, ``enter``)."""
    for n, password in enumerate(("ssword12", "password1\nenter")):
        await registered(gw, f"whole{n}", password)
        login = await password_login(gw, f"whole{n}", password)
        assert login["__typename"] == "LoginSuccess", (password, login)


async def test_passwords_at_the_length_bounds_are_accepted(gw: Harness) -> None:
    for length in (8, 128):
        password = ("Zq7#mW2v" * 16)[:length]
        await registered(gw, f"len{length}", password)
        login = await password_login(gw, f"len{length}", password)
        assert login["__typename"] == "LoginSuccess", (length, login)


async def test_lookalike_usernames_cannot_register_twice(gw: Harness) -> None:
    first = await registered(gw, "dana")
    for lookalike in ("Dana", "DANA", fullwidth("dana"), " dana "):
        again = await register(gw, lookalike, "another-Secret-77")
        assert (again["__typename"], again["code"]) == ("ConflictError", "USERNAME_TAKEN"), (
            lookalike
        )
    # the first owner keeps the username and the password
    login = await password_login(gw, "dana")
    assert login["account"]["id"] == first["account"]["id"]
    assert (await password_login(gw, "dana", "another-Secret-77"))["code"] == "INVALID_CREDENTIALS"


async def test_malformed_usernames_are_invalid_input(gw: Harness) -> None:
    cyrillic = "\N{CYRILLIC SMALL LETTER A}lice"
    for username in ("ab", "x" * 33, "has space", "al!ce", "", cyrillic):
        for result in (await register(gw, username), await password_login(gw, username)):
            assert (result["__typename"], result["code"], result["field"]) == (
                "InvalidInputError",
                "INVALID_INPUT",
                "username",
            ), username


async def test_an_unknown_app_is_unknown_app(gw: Harness) -> None:
    await registered(gw, "erin")
    for result in (
        await register(gw, "erin2", app="no-such-app"),
        await password_login(gw, "erin", app="no-such-app"),
    ):
        assert (result["__typename"], result["code"]) == ("UnknownAppError", "UNKNOWN_APP")
    assert (await register(gw, "erin2"))["__typename"] == "LoginSuccess"  # it was not created


async def test_unknown_user_and_wrong_password_take_the_same_order_of_time(
    database_url: str, configure: Configure
) -> None:
    """Loosely: without the dummy hash an unknown user would answer several times faster.

    A costlier hash (t=10) than the default keeps that gap wide above the fixed per-request work.
    """
    config = configure(database_url, throttle=LENIENT, passwords={"time_cost": 10})
    async with running(config) as gw:
        await registered(gw, "frank")
        await password_login(gw, "frank", "wrong-password-0")  # warm up both paths
        await password_login(gw, "nobody-0", "wrong-password-0")
        unknown: list[float] = []
        wrong: list[float] = []
        for n in range(1, 6):
            for times, username in ((unknown, f"nobody-{n}"), (wrong, "frank")):
                started = time.perf_counter()
                result = await password_login(gw, username, f"wrong-password-{n}")
                times.append(time.perf_counter() - started)
                assert result["code"] == "INVALID_CREDENTIALS"
    ratio = statistics.median(unknown) / statistics.median(wrong)  # medians: robust to a hiccup
    assert 0.3 < ratio < 3, (unknown, wrong)


async def test_a_changed_hash_cost_rehashes_transparently_at_login(
    database_url: str, configure: Configure
) -> None:
    """From OWASP's 19 MiB, t=2 pair to the default 7 MiB, t=5 one: hashes follow at login."""
    before_cost = {"time_cost": 2, "memory_kib": 19456}
    async with running(configure(database_url, passwords=before_cost)) as before:
        created = await registered(before, "gina")
        old_hash = await stored_hash(before, "gina")
    assert old_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")

    async with running(configure(database_url)) as after:
        login = await password_login(after, "gina")
        assert login["__typename"] == "LoginSuccess", login
        assert login["account"]["id"] == created["account"]["id"]
        new_hash = await stored_hash(after, "gina")
        assert new_hash.startswith("$argon2id$v=19$m=7168,t=5,p=1$")
        again = await password_login(after, "gina")
        assert again["__typename"] == "LoginSuccess", again
        assert await stored_hash(after, "gina") == new_hash  # rehashed once, not every login
        wrong = await password_login(after, "gina", "wrong-password-1")
        assert wrong["code"] == "INVALID_CREDENTIALS"


class ArgonSpy:
    """Observes (never replaces) argon2's own hash and verify: which thread, how many at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.loop_thread = threading.get_ident()
        self.busy = asyncio.Event()
        self.threads: set[int] = set()
        self.done = 0
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def observed(hasher: PasswordHasher, *args: Any) -> Any:
            with self._lock:
                self.threads.add(threading.get_ident())
                self.running += 1
                self.most_at_once = max(self.most_at_once, self.running)
            self.loop.call_soon_threadsafe(self.busy.set)
            try:
                return method(hasher, *args)
            finally:
                with self._lock:
                    self.running -= 1
                    self.done += 1

        return observed


async def test_password_hashing_never_runs_on_the_event_loop(
    lenient: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """argon2 runs in a small pool (one thread per core), and while it is busy with a burst of
    logins a query that needs no hash answers before the burst is done."""
    burst = 12
    spy = ArgonSpy(asyncio.get_running_loop())
    monkeypatch.setattr(PasswordHasher, "hash", spy.wrap(PasswordHasher.hash))
    monkeypatch.setattr(PasswordHasher, "verify", spy.wrap(PasswordHasher.verify))
    await registered(lenient, "hank")
    assert spy.done == 1

    logins = [asyncio.create_task(password_login(lenient, "hank")) for _ in range(burst)]
    await spy.busy.wait()
    apps = await lenient.gql("{ apps { key } }")
    hashed_before_the_answer = spy.done - 1
    results = await asyncio.gather(*logins)

    assert {a["key"] for a in apps["data"]["apps"]} >= {"shop-mp", "news-oa"}
    assert hashed_before_the_answer < burst // 2, hashed_before_the_answer
    assert [r["__typename"] for r in results] == ["LoginSuccess"] * burst
    assert spy.done == 1 + burst
    assert spy.loop_thread not in spy.threads
    assert 1 <= spy.most_at_once <= (os.cpu_count() or 2) < burst


# -- changePassword ----------------------------------------------------------------------------


async def test_change_password_with_a_wrong_current_password_changes_nothing(
    gw: Harness,
) -> None:
    created = await registered(gw, "ivan")
    result = await change_password(gw, created["accessToken"], "not-it-at-all", "brand-New-pass-9")
    assert (result["__typename"], result["code"]) == (
        "InvalidCredentialsError",
        "INVALID_CREDENTIALS",
    )
    assert (await password_login(gw, "ivan"))["__typename"] == "LoginSuccess"
    assert (await password_login(gw, "ivan", "brand-New-pass-9"))["code"] == "INVALID_CREDENTIALS"


async def test_change_password_revokes_every_other_session_and_swaps_the_password(
    gw: Harness,
) -> None:
    first = await registered(gw, "judy")
    current = await password_login(gw, "judy")
    third = await password_login(gw, "judy")
    result = await change_password(gw, current["accessToken"], GOOD_PASSWORD, "fresh-Meadow-31")
    assert result == {"__typename": "ChangePasswordSuccess", "revokedSessions": 2}

    assert await viewer_id(gw, current["accessToken"]) == first["account"]["id"]
    assert await viewer_id(gw, first["accessToken"]) is None
    assert await viewer_id(gw, third["accessToken"]) is None
    refresh = await gw.gql(
        "mutation($t: String!) { refreshToken(refreshToken: $t) { __typename } }",
        {"t": third["refreshToken"]},
    )
    assert refresh["data"]["refreshToken"]["__typename"] == "RefreshTokenError"

    assert (await password_login(gw, "judy"))["code"] == "INVALID_CREDENTIALS"
    login = await password_login(gw, "judy", "fresh-Meadow-31")
    assert login["account"]["id"] == first["account"]["id"]


async def test_change_password_applies_the_policy_to_the_new_password(gw: Harness) -> None:
    created = await registered(gw, "kim-lee")
    for weak in ("short1!", "password1", "kim-lee-rocks-2024"):
        result = await change_password(gw, created["accessToken"], GOOD_PASSWORD, weak)
        assert (result["__typename"], result["code"]) == ("WeakPasswordError", "WEAK_PASSWORD")
    assert (await password_login(gw, "kim-lee"))["__typename"] == "LoginSuccess"
    assert await viewer_id(gw, created["accessToken"]) is not None


async def test_change_password_needs_a_password_and_a_login(gw: Harness) -> None:
    wechat_only = await gw.login("shop-mp", "wechat-only")
    result = await change_password(gw, wechat_only["accessToken"], "anything-1", "whatever-Ok-42")
    assert (result["__typename"], result["code"]) == ("NotFoundError", "NO_PASSWORD")
    anonymous = await change_password(gw, None, GOOD_PASSWORD, "whatever-Ok-42")
    assert (anonymous["__typename"], anonymous["code"]) == (
        "NotAuthenticatedError",
        "NOT_LOGGED_IN",
    )


async def test_change_password_with_an_oversized_client_field_is_typed(gw: Harness) -> None:
    created = await registered(gw, "leo")
    client = {"platform": "ios", "deviceParam": "d" * 600}
    variables = {"current": GOOD_PASSWORD, "new": "fresh-Meadow-31", "client": client}
    body = await gw.gql(CHANGE_PASSWORD, variables, token=created["accessToken"])
    assert "errors" not in body, body
    result = body["data"]["changePassword"]
    assert result["code"] == "INVALID_INPUT"


# -- hashing admission -------------------------------------------------------------------------

FLOODED_LOGIN = """mutation($u: String!) { loginWithPassword(input: {username: $u,
  password: "wrong-password-1", app: "shop-mp", client: {platform: "web"}}) { __typename
  ... on Error { code } ... on UpstreamError { retryAfterSeconds } } }"""


async def test_password_checks_beyond_capacity_are_refused_at_once_and_typed(
    database_url: str, configure: Configure
) -> None:
    """One hash at a time and no queue: a burst is answered at once, not made to wait."""
    capacity = {"time_cost": 10, "max_concurrent": 1, "max_waiting": 0}
    async with running(configure(database_url, throttle=LENIENT, passwords=capacity)) as gw:
        await registered(gw, "flood")
        answers = await asyncio.gather(*(gw.gql(FLOODED_LOGIN, {"u": "flood"}) for _ in range(8)))
        results = [a["data"]["loginWithPassword"] for a in answers]
        refused = [r for r in results if r["code"] == "TEMPORARILY_UNAVAILABLE"]
        assert refused, results
        assert all(
            r
            == {
                "__typename": "UpstreamError",
                "code": "TEMPORARILY_UNAVAILABLE",
                "retryAfterSeconds": 1.0,
            }
            for r in refused
        )
        assert {r["code"] for r in results} <= {"TEMPORARILY_UNAVAILABLE", "INVALID_CREDENTIALS"}
        assert "INVALID_CREDENTIALS" in {r["code"] for r in results}
        # capacity comes back as soon as the burst is over
        assert (await password_login(gw, "flood"))["__typename"] == "LoginSuccess"


def test_common_password_file_is_zxcvbns_list() -> None:
    """The gateway reads a plain file instead of importing zxcvbn (memory): it must stay the
    list it was taken from; ``scripts/refresh_common_passwords.py`` rewrites it."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    from gateway.credentials.passwords import COMMON_PASSWORDS

    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ")
    assert lines[1:] == FREQUENCY_LISTS["passwords"]
