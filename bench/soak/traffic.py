"""The soak's simulated users: each with its own WeChat codes, tokens, phone and password.

An actor plays one person at a time (never two actors the same person, as one phone runs
one mini-program): a launch login (a new person or a returning one), a few viewer queries,
and sometimes a refresh (a quarter of them from two "tabs" at once, on two gateways), a
bindUnionId, a phone bind, a password login (a quarter with a wrong password) or a partner
lookup. Every answer is classified (``answers.classify``) and kept with its time, so the
report can cut it per minute and the checks can hold it against the fault windows; every
success the client saw is counted by the audit kind it must have left behind.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.loadgen import HOST, Connection
from bench.soak import queries as q
from bench.soak.answers import Outcome, account_uuid, classify
from bench.soak.stack import PARTNER
from bench.stack import APPID

ROLL = random.Random()  # noqa: S311 - the users' choices, not secrets
IDLE = 3.0
PLATFORMS = ("soak-ios", "soak-android")


class Conn(Connection):
    """A keep-alive connection that tells a refused connection (nothing was sent: another
    gateway may take it, as a load balancer would) from one lost mid-request."""

    used = 0.0

    async def open(self) -> None:
        """Connect unless connected; a connection idle for ``IDLE`` seconds is replaced, as
        HTTP clients do: the server may be closing it (uvicorn keeps idle ones 5 s)."""
        now = time.monotonic()
        if now - self.used > IDLE:
            await self.close()
        self.used = now
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection(HOST, self.port)


def request(port: int, path: str, body: bytes, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}:{port}", "User-Agent: gateway-soak"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


@dataclass
class Person:
    index: int
    account: str | None = None
    access: str | None = None
    refresh: str | None = None
    password: str = field(default_factory=lambda: f"soak-{secrets.token_urlsafe(9)}-pw")
    registered: bool = False  # with ``password``: the gateway said so (or USERNAME_TAKEN)

    @property
    def name(self) -> str:
        return f"soak-{self.index}"

    @property
    def phone(self) -> str:
        return f"139{self.index:08d}"


@dataclass
class Log:
    """What the load generator saw: every answer, and the successes by audit kind."""

    start: float = field(default_factory=time.monotonic)
    outcomes: list[Outcome] = field(default_factory=list)
    seen: Counter[str] = field(default_factory=Counter)
    new_accounts: set[str] = field(default_factory=set)
    phones_linked: int = 0
    duplicates: list[str] = field(default_factory=list)
    failovers: int = 0

    def now(self) -> float:
        return time.monotonic() - self.start


class Population:
    """People met so far; each is held by at most one actor at a time."""

    def __init__(self, new_share: float) -> None:
        self.people: list[Person] = []
        self.busy: set[int] = set()
        self.new_share = new_share

    def take(self) -> Person:
        free = len(self.people) - len(self.busy)
        if free < 8 or ROLL.random() < self.new_share:
            person = Person(len(self.people))
            self.people.append(person)
        else:
            while True:
                person = ROLL.choice(self.people)
                if person.index not in self.busy:
                    break
        self.busy.add(person.index)
        return person

    def give_back(self, person: Person) -> None:
        self.busy.discard(person.index)


class Actor:
    """One simulated client at a time, on its home gateway (the next one when refused)."""

    def __init__(
        self, index: int, ports: list[int], emulator: int, log: Log, partner_secret: str
    ) -> None:
        self.index = index
        self.partner_secret = partner_secret
        self.ports = ports
        self.log = log
        self.home = index % len(ports)
        self.conns: dict[tuple[int, int], Conn] = {}  # by port and tab
        self.emulator = Conn(emulator)
        self.platform = PLATFORMS[index % 2]
        self.address = f"10.{index // 256 % 256}.{index % 256}.7"
        self.partner_token = ""
        self.partner_until = 0.0  # renewed before it expires, as a partner's client would

    async def close(self) -> None:
        for conn in [*self.conns.values(), self.emulator]:
            await conn.close()

    # -- the wire ---------------------------------------------------------------------------

    async def gql(
        self, op: str, query: str, variables: Mapping[str, object], token: str = "", tab: int = 0
    ) -> dict[str, object] | None:
        """One GraphQL request; its outcome is logged; the result node when it succeeded."""
        body = json.dumps({"query": query, "variables": variables}).encode()
        headers = [("Content-Type", "application/json"), ("Accept-Language", "en")]
        headers.append(("X-Forwarded-For", self.address))
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        status, answer, port, sent = await self._send("/graphql", body, headers, tab)
        outcome = classify(op, status, answer)
        self.log.outcomes.append(
            Outcome(self.log.now(), op, time.monotonic() - sent, outcome.result, port)
        )
        return outcome.node if outcome.result in ("ok", "expected") else None

    async def _send(
        self, path: str, body: bytes, headers: list[tuple[str, str]], tab: int
    ) -> tuple[int, bytes, int, float]:
        """Status, body, the gateway's port and the send time; status 0 when the connection
        was lost mid-request, -1 when no gateway took it."""
        sent = time.monotonic()
        for attempt in range(len(self.ports)):
            port = self.ports[(self.home + tab + attempt) % len(self.ports)]
            conn = self.conns.setdefault((port, tab), Conn(port))
            try:
                await conn.open()
            except OSError:
                self.log.failovers += 1
                continue
            try:
                status, answer = await conn.send(request(port, path, body, headers))
            except (OSError, asyncio.IncompleteReadError, ValueError):
                return 0, b"", port, sent
            return status, answer, port, sent
        return -1, b"", 0, sent

    async def emulator_call(self, path: str, payload: dict[str, object]) -> dict[str, object]:
        body = json.dumps(payload).encode()
        req = request(self.emulator.port, path, body, [("Content-Type", "application/json")])
        await self.emulator.open()
        status, answer = await self.emulator.send(req)
        if status != 200:
            raise RuntimeError(f"{path} {status} {answer[:80]!r}")
        result: dict[str, object] = json.loads(answer)
        return result

    # -- one visit --------------------------------------------------------------------------

    async def visit(self, person: Person) -> None:
        if not await self.launch(person):
            return
        for _ in range(ROLL.randint(1, 3)):
            await self.gql("viewer", q.VIEWER, {}, token=person.access or "")
        roll = ROLL.random()
        if roll < 0.30:
            await self.refresh(person, tabs=2 if ROLL.random() < 0.25 else 1)
        elif roll < 0.45:
            await self.bind_unionid(person)
        elif roll < 0.57:
            await self.bind_phone(person)
        elif roll < 0.65:
            await self.password(person)
        elif roll < 0.80:
            await self.lookup(person)

    def client(self) -> dict[str, object]:
        return {"platform": self.platform, "channel": "soak"}

    async def launch(self, person: Person) -> bool:
        minted = await self.emulator_call("/sandbox/codes", {"appid": APPID, "user": person.name})
        node = await self.gql("login", q.LOGIN, {"code": minted["code"], "client": self.client()})
        if node is None:
            return False
        account = str(node["account"]["id"])  # type: ignore[index]
        new = bool(node["isNewAccount"])
        self.log.seen["register" if new else "login"] += 1
        if new:
            self.log.new_accounts.add(account_uuid(account))
        if person.account is not None and person.account != account:
            self.log.duplicates.append(f"{person.name}: {person.account} then {account}")
        person.account = account
        person.access, person.refresh = str(node["accessToken"]), str(node["refreshToken"])
        return True

    async def refresh(self, person: Person, tabs: int) -> None:
        variables = {"token": person.refresh, "client": self.client()}
        op = "refresh" if tabs == 1 else "refresh (2 tabs)"
        nodes = await asyncio.gather(
            *(self.gql(op, q.REFRESH, variables, tab=tab) for tab in range(tabs))
        )
        for node in nodes:
            if node is not None:
                self.log.seen["refresh|refresh_grace"] += 1
                person.access, person.refresh = str(node["accessToken"]), str(node["refreshToken"])

    async def bind_unionid(self, person: Person) -> None:
        sealed = await self.emulator_call(
            "/sandbox/encrypted-data", {"appid": APPID, "user": person.name}
        )
        variables = {**sealed, "client": self.client()}
        if await self.gql("bindUnionId", q.BIND_UNIONID, variables, token=person.access or ""):
            self.log.seen["bind_unionid"] += 1

    async def bind_phone(self, person: Person) -> None:
        minted = await self.emulator_call(
            "/sandbox/phone-codes", {"appid": APPID, "user": person.name, "phone": person.phone}
        )
        variables = {"code": minted["code"], "client": self.client()}
        node = await self.gql("bindPhoneNumber", q.BIND_PHONE, variables, person.access or "")
        if node is not None:
            self.log.seen["bind_phone"] += 1
            self.log.phones_linked += bool(node["linked"])

    async def password(self, person: Person) -> None:
        username = f"soak-user-{person.index}"
        if not person.registered:  # again after a failure: the same password
            variables = {"u": username, "p": person.password, "client": self.client()}
            node = await self.gql("registerWithPassword", q.REGISTER, variables)
            person.registered = node is not None
            if node is not None and node.get("__typename") == "LoginSuccess":
                self.log.seen["register"] += 1
                self.log.new_accounts.add(account_uuid(str(node["account"]["id"])))  # type: ignore[index]
            return
        wrong = ROLL.random() < 0.25
        secret = "not-the-password-1" if wrong else person.password
        variables = {"u": username, "p": secret, "client": self.client()}
        op = "loginWithPassword (wrong)" if wrong else "loginWithPassword"
        if await self.gql(op, q.PASSWORD_LOGIN, variables) is not None:
            self.log.seen["login_failed" if wrong else "login"] += 1

    async def lookup(self, person: Person) -> None:
        if time.monotonic() > self.partner_until:
            self.partner_token = await self.partner_grant()
        if self.partner_token:
            await self.gql("partner lookup", q.LOOKUP, {"id": person.account}, self.partner_token)

    async def partner_grant(self) -> str:
        """A client-credentials token for the soak's partner ('' when refused: logged)."""
        body = (
            f"grant_type=client_credentials&client_id={PARTNER}"
            f"&client_secret={self.partner_secret}&scope=accounts:lookup"
        )
        headers = [("Content-Type", "application/x-www-form-urlencoded")]
        status, answer, port, sent = await self._send("/oauth/token", body.encode(), headers, 0)
        result = "ok" if status == 200 else ("5xx" if status >= 500 else f"HTTP {status}")
        self.log.outcomes.append(
            Outcome(self.log.now(), "partner token", time.monotonic() - sent, result, port)
        )
        if status != 200:
            return ""
        grant = json.loads(answer)
        self.partner_until = time.monotonic() + float(grant.get("expires_in", 60)) - 30
        return str(grant.get("access_token", ""))


async def run_actors(actors: list[Actor], population: Population, until: float, log: Log) -> None:
    """Every actor visits person after person until ``until`` (seconds into the soak)."""

    async def loop(actor: Actor) -> None:
        try:
            while log.now() < until:
                person = population.take()
                try:
                    await actor.visit(person)
                except (OSError, RuntimeError, asyncio.IncompleteReadError) as exc:
                    failure = f"{type(exc).__name__}: {exc}"[:100]
                    log.outcomes.append(Outcome(log.now(), "emulator", 0.0, failure, 0))
                finally:
                    population.give_back(person)
                await asyncio.sleep(ROLL.uniform(0.0, 0.05))
        finally:
            await actor.close()

    await asyncio.gather(*(loop(actor) for actor in actors))
