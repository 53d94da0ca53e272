"""The fast paths proven equal to the reference: random sequences of logins, refreshes,
logouts, disable/enable and deletions run against two gateways, one with ``[performance]
fast_paths = true`` (the one-statement PostgreSQL path, SQLite's writer thread) and one with
``fast_paths = false`` (the transactional reference), each on its own fresh database. After every
step the two answers must agree, and so must the rows left behind, normalised: every random id
becomes a label given at its first appearance in an answer (accounts ``A0``, sessions ``S0``,
refresh tokens ``R0``), timestamps and secrets dropped.

``GATEWAY_TEST_FAST_PATH_EXAMPLES`` (default 6) and ``GATEWAY_TEST_FAST_PATH_STEPS`` (default 25)
make a longer local run (random then, not the fixed examples CI runs).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from gateway.rights.service import Operator
from tests.support.accounts import account_uuid, oa_attempt
from tests.support.harness import (
    LOGIN,
    PG_URL,
    Configure,
    Harness,
    running,
    skip_or_fail,
    truncate,
)
from tests.support.side_by_side import SIDES, Side, differences, postgres_pair

T = TypeVar("T")

EXAMPLES = int(os.environ.get("GATEWAY_TEST_FAST_PATH_EXAMPLES", "6"))
STEPS = int(os.environ.get("GATEWAY_TEST_FAST_PATH_STEPS", "25"))
LONG_RUN = "GATEWAY_TEST_FAST_PATH_EXAMPLES" in os.environ

USERS = ["ann", "bob", "cy"]
# where a login comes from: two mini-programs on one open platform (unionid), one outside it,
# and the official account with and without the scope that reveals the unionid
DOORS = ["shop-mp", "club-mp", "solo-mp", "news-oa:snsapi_base", "news-oa:snsapi_userinfo"]
CHANNELS = st.sampled_from([None, "store"])

REFRESH = """mutation($t: String!) { refreshToken(refreshToken: $t) { __typename
  ... on RefreshSuccess { accessToken refreshToken account { id } }
  ... on Error { code } } }"""
LOGOUT = """mutation($e: Boolean!) { logout(everywhere: $e) { __typename
  ... on LogoutSuccess { revokedSessions } ... on Error { code } } }"""
DELETE = """mutation { deleteAccount { __typename
  ... on DeleteAccountSuccess { pending } ... on Error { code } } }"""
VIEWER = "{ viewer { id status } }"


@dataclass
class World:
    """How the state machine gets fresh gateways: the backend's databases and the config."""

    configure: Configure
    fresh_urls: Callable[[], Coroutine[Any, Any, tuple[str, str]]]


class FastPathsEqual(RuleBasedStateMachine):
    world: World | None = None

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.stop: asyncio.Event | None = None
        self.holder: asyncio.Task[None] | None = None
        self.sides: list[Side] = []
        # per successful login or refresh (#0, #1, ...): each side's access and refresh token
        self.logins: list[tuple[str, ...]] = []
        self.refreshes: list[tuple[str, ...]] = []
        self.presented: list[int] = []  # which refresh tokens were presented, in order
        # each refreshed token's successor, per side: a reuse in the grace window answers it
        self.successors: dict[int, tuple[str, ...]] = {}
        self.history: list[str] = []

    # -- plumbing ---------------------------------------------------------------------------

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    async def _hold(
        self, urls: tuple[str, str], knobs: dict[str, Any], ready: asyncio.Future[Any]
    ) -> None:
        """Both gateways, entered and left in this one task (their lifespans want that)."""
        assert self.world is not None
        assert self.stop is not None
        async with AsyncExitStack() as stack:
            gateways = []
            for url, fast in zip(urls, (False, True), strict=True):
                config = self.world.configure(
                    url,
                    tokens={"refresh_reuse_grace_seconds": knobs["grace"]},
                    accounts={"deletion_grace_days": knobs["cooling_off"]},
                    performance={"fast_paths": fast},
                )
                gateways.append(await stack.enter_async_context(running(config)))
            ready.set_result(gateways)
            await self.stop.wait()

    async def _start(self, knobs: dict[str, Any]) -> list[Harness]:
        assert self.world is not None
        urls = await self.world.fresh_urls()
        self.stop = asyncio.Event()
        ready: asyncio.Future[list[Harness]] = asyncio.get_running_loop().create_future()
        self.holder = asyncio.create_task(self._hold(urls, knobs, ready))
        waiting: list[asyncio.Future[Any]] = [ready, self.holder]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            self.holder.result()  # raises what kept the gateways from starting
        return ready.result()

    async def _finish(self) -> None:
        if self.holder is not None and self.stop is not None:
            self.stop.set()
            await self.holder

    def teardown(self) -> None:
        try:
            self.run(self._finish())
        finally:
            self.runner.close()

    def same(self, step: str, answers: list[Any]) -> Any:
        """Both answers agree, then both databases do; the reference's answer."""
        self.history.append(f"{step} -> {answers[0]!r}")
        steps = "\n".join(self.history)
        assert answers[0] == answers[1], (
            f"the answers differ at `{step}`:\n{differences(*answers)}\nsteps:\n{steps}"
        )
        rows = self.run(self._rows())
        assert rows[0] == rows[1], (
            f"the rows differ after `{step}`:\n{differences(*rows)}\nsteps:\n{steps}"
        )
        return answers[0]

    async def _rows(self) -> list[dict[str, list[Any]]]:
        return [await side.rows() for side in self.sides]

    def on_both(self, step: str, act: Callable[[Side, int], Coroutine[Any, Any, Any]]) -> Any:
        async def both() -> list[Any]:
            return [await act(side, index) for index, side in enumerate(self.sides)]

        return self.same(step, self.run(both()))

    def keep(self, results: list[dict[str, Any]]) -> None:
        if "accessToken" in results[0]:
            self.logins.append(tuple(r["accessToken"] for r in results))
            self.refreshes.append(tuple(r["refreshToken"] for r in results))

    # -- the steps --------------------------------------------------------------------------

    @initialize(grace=st.sampled_from([0, 30]), cooling_off=st.sampled_from([0, 7]))
    def start(self, grace: int, cooling_off: int) -> None:
        """Two fresh gateways. A refresh grace of 0 makes every reuse one after the window; a
        deletion's cooling-off leaves the account pending, and a login then cancels it."""
        gateways = self.run(self._start({"grace": grace, "cooling_off": cooling_off}))
        self.sides = [Side(name, gw) for name, gw in zip(SIDES, gateways, strict=True)]
        self.history.append(
            f"refresh_reuse_grace_seconds = {grace}, deletion_grace_days = {cooling_off}"
        )

    @rule(user=st.sampled_from(USERS), door=st.sampled_from(DOORS), channel=CHANNELS)
    def login(self, user: str, door: str, channel: str | None = None) -> None:
        results: list[dict[str, Any]] = []

        async def act(side: Side, _: int) -> dict[str, Any]:
            app, _colon, scope = door.partition(":")
            if scope:
                result = await oa_attempt(side.gw, user, scope=scope)
            else:
                code = await side.gw.mint(app, user)
                client = {"platform": "ios", "channel": channel}
                variables = {"app": app, "code": code, "client": client}
                result = (await side.gw.gql(LOGIN, variables))["data"]["loginByCode"]
            results.append(result)
            answer = side.answer(result)
            for name in ("expiresAt", "refreshExpiresAt", "message"):
                answer.pop(name, None)
            return answer

        self.on_both(f"login {user} at {door}" + (f" ({channel})" if channel else ""), act)
        self.keep(results)

    @rule(user=st.sampled_from(USERS), door=st.sampled_from(DOORS), channel=CHANNELS)
    def login_again(self, user: str, door: str, channel: str | None) -> None:
        """The same as ``login``: logins twice as often as the other steps."""
        self.login(user, door, channel)

    @precondition(lambda self: self.refreshes)
    @rule(pick=st.integers(min_value=0, max_value=1000))
    def refresh(self, pick: int) -> None:
        """Any token given so far: fresh, or spent (inside the grace window or after it)."""
        self._refresh(pick % len(self.refreshes))

    @precondition(lambda self: self.refreshes)
    @rule()
    def refresh_latest(self) -> None:
        """The token given last: usually fresh (the fast path's case)."""
        self._refresh(len(self.refreshes) - 1)

    @precondition(lambda self: self.presented)
    @rule()
    def refresh_reused(self) -> None:
        """The token presented last, again: a client that raced itself or lost the answer
        (inside the grace window), or a stolen token (after it)."""
        self._refresh(self.presented[-1])

    def _refresh(self, index: int) -> None:
        self.presented.append(index)
        results: list[dict[str, Any]] = []

        async def act(side: Side, i: int) -> Any:
            data = await side.post(REFRESH, {"t": self.refreshes[index][i]}, None)
            result = data["refreshToken"]
            results.append(result)
            return side.answer({k: v for k, v in result.items() if k != "message"})

        self.on_both(f"refreshToken with refresh token #{index}", act)
        if "refreshToken" in results[0]:
            successor = tuple(r["refreshToken"] for r in results)
            assert self.successors.setdefault(index, successor) == successor, (
                f"token #{index} answered a second successor (a new chain)"
            )
        self.keep(results)

    @precondition(lambda self: self.logins)
    @rule(
        pick=st.integers(min_value=0, max_value=1000),
        what=st.sampled_from(["logout", "logout everywhere", "deleteAccount", "viewer"]),
    )
    def with_token(self, pick: int, what: str) -> None:
        """An access token given so far (live, revoked, or its account merged or gone)."""
        index = pick % len(self.logins)
        query, variables = {
            "logout": (LOGOUT, {"e": False}),
            "logout everywhere": (LOGOUT, {"e": True}),
            "deleteAccount": (DELETE, {}),
            "viewer": (VIEWER, {}),
        }[what]

        async def act(side: Side, i: int) -> Any:
            data = await side.post(query, variables, self.logins[index][i])
            if isinstance(data, dict) and data.get("viewer"):
                viewer = data["viewer"]
                return side.labels.of(account_uuid(viewer["id"])), viewer["status"]
            return data

        self.on_both(f"{what} with access token #{index}", act)

    @precondition(lambda self: self.sides and self.sides[0].labels.counts.get("A"))
    @rule(pick=st.integers(min_value=0, max_value=1000), disabled=st.booleans())
    def disable(self, pick: int, disabled: bool) -> None:
        """The operators' use case (what ``gateway accounts disable|enable`` and the console
        call) on an account named by its label."""
        label = f"A{pick % self.sides[0].labels.counts['A']}"

        async def act(side: Side, _: int) -> Any:
            account = side.labels.id_of(label)
            rights = side.gw.app.state.api.rights
            try:
                return await rights.set_disabled(account, disabled, Operator("ops", "test"))
            except Exception as exc:  # an operator's refusal: its type is the answer
                return type(exc).__name__

        self.on_both(f"{'disable' if disabled else 'enable'} {label}", act)


def budget() -> settings:
    return settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        derandomize=not LONG_RUN,  # CI runs the same examples every time
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def run_machine(configure: Configure, fresh_urls: Any) -> None:
    FastPathsEqual.world = World(configure, fresh_urls)
    try:
        run_state_machine_as_test(FastPathsEqual, settings=budget())
    finally:
        FastPathsEqual.world = None


def test_fast_paths_equal_the_reference_on_sqlite(
    configure: Configure, sqlite_template: Path, tmp_path: Path
) -> None:
    async def fresh_urls() -> tuple[str, str]:
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        urls = []
        for side in SIDES:
            shutil.copy(sqlite_template, folder / f"{side}.db")
            urls.append(f"sqlite+aiosqlite:///{folder / side}.db")
        return urls[0], urls[1]

    run_machine(configure, fresh_urls)


@pytest.mark.postgres
def test_fast_paths_equal_the_reference_on_postgres(configure: Configure) -> None:
    if not PG_URL:
        skip_or_fail("PostgreSQL")
    assert PG_URL
    with postgres_pair(PG_URL) as urls:

        async def fresh_urls() -> tuple[str, str]:
            for url in urls:
                await truncate(url)
            return urls

        run_machine(configure, fresh_urls)


async def test_the_reference_setting_never_takes_a_fast_path(
    database_url: str, configure: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``fast_paths = false`` neither one-step runner is ever called: a login and a
    refresh still succeed with both taken away (the fast-path gateway would need them)."""
    config = configure(database_url, performance={"fast_paths": False})
    async with running(config) as gw:
        db = gw.app.state.services.db

        def taken_away(*_: Any) -> None:
            raise AssertionError("a fast path ran with fast_paths = false")

        monkeypatch.setattr(db, "write_once", taken_away)
        monkeypatch.setattr(db, "write_in_thread", taken_away)
        for user in ("dee", "dee"):  # a new user, then a returning one
            login = await gw.login("shop-mp", user)
        answer = (await gw.gql(REFRESH, {"t": login["refreshToken"]}))["data"]["refreshToken"]
        assert answer["__typename"] == "RefreshSuccess", answer
