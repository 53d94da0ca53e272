"""The merging-login row (issue 24: every change of the account graph writes its events).

Per user, set up before the clock: an official-account ``snsapi_base`` login (openid only:
account A) and a mini-program login of the same sandbox user (account B, with the unionid).
Timed: the official account's ``snsapi_userinfo`` login of that user, which brings the unionid,
proves A and B one person and merges B into A (``LoginSuccess`` with A's id). Every timed
login needs a user of its own: a merged user logs in as a returning one afterwards.
"""

from __future__ import annotations

import json

from bench.loadgen import Spec, Stats
from bench.measure import Meter, fmt_ms, fmt_rate, mint, post, trusted
from bench.options import Options, Section
from bench.stack import APP_KEY, OA_APPID, OA_KEY, Stack

CLIENT = '{platform: "bench"}'
OA_LOGIN = (
    "mutation($code: String!, $state: String!) { loginByCode(input: "
    f'{{app: "{OA_KEY}", code: $code, state: $state, client: {CLIENT}}}) '
    "{ __typename ... on LoginSuccess { isNewAccount account { id } } "
    "... on Error { code message } } }"
)
MP_LOGIN = (
    "mutation($code: String!) { loginByCode(input: "
    f'{{app: "{APP_KEY}", code: $code, client: {CLIENT}}}) '
    "{ __typename ... on LoginSuccess { isNewAccount account { id } } "
    "... on Error { code message } } }"
)
AUTHORIZATION_URL = (
    f'query($scope: String!) {{ authorizationUrl(app: "{OA_KEY}", '
    'redirectUri: "https://bench.example.com/cb", scope: $scope) '
    "{ ... on AuthorizationUrl { state } } }"
)
CHECKED = 20  # merged users whose mini-program login must reach A afterwards


def gql(query: str, **variables: object) -> bytes:
    return json.dumps({"query": query, "variables": variables}, separators=(",", ":")).encode()


def account_id(answer: dict[str, object]) -> str:
    """The account id of a ``LoginSuccess`` answer."""
    match answer:
        case {"data": {"loginByCode": {"account": {"id": str(found)}}}}:
            return found
    raise RuntimeError(f"login without an account id: {str(answer)[:300]}")


class MergeRow:
    """``loginByCode``, merging login: the rate and latencies, on one database section."""

    def __init__(self, opts: Options, stack: Stack, meter: Meter) -> None:
        self.opts = opts
        self.stack = stack
        self.meter = meter

    def state(self, port: int, scope: str) -> str:
        """A state from ``authorizationUrl``, as the page would have before sending the user
        to WeChat (signed and stateless: it holds for every login of the batch)."""
        (answer,) = post(port, [gql(AUTHORIZATION_URL, scope=scope)], b'"state"')
        match answer:
            case {"data": {"authorizationUrl": {"state": str(state)}}}:
                return state
        raise RuntimeError(f"authorizationUrl without a state: {str(answer)[:300]}")

    def prepare(self, s: Section, count: int) -> tuple[list[bytes], dict[str, str]]:
        """``count`` users with accounts A and B, and their merging logins' bodies; the dict
        maps each user to A's id."""
        assert s.gateway is not None
        assert self.stack.emulator is not None
        port, emulator = s.gateway.port, self.stack.emulator
        start = s.counters.get("merge", 0)
        s.counters["merge"] = start + count
        users = [f"merge-{start + i}" for i in range(count)]
        base = self.state(port, "snsapi_base")
        codes = mint(emulator, users, OA_APPID, "snsapi_base")
        answers = post(
            port, [gql(OA_LOGIN, code=c, state=base) for c in codes], b'"isNewAccount":true'
        )
        a_ids = {u: account_id(a) for u, a in zip(users, answers, strict=True)}
        codes = mint(emulator, users)
        answers = post(port, [gql(MP_LOGIN, code=c) for c in codes], b'"isNewAccount":true')
        for u, a in zip(users, answers, strict=True):
            if account_id(a) == a_ids[u]:
                raise RuntimeError(f"setup: {u}'s mini-program login reached A already")
        userinfo = self.state(port, "snsapi_userinfo")
        codes = mint(emulator, users, OA_APPID, "snsapi_userinfo")
        return [gql(OA_LOGIN, code=c, state=userinfo) for c in codes], a_ids

    def check(self, s: Section, a_ids: dict[str, str]) -> None:
        """After the window: merged users' mini-program logins reach A (B was merged into A)."""
        assert s.gateway is not None
        assert self.stack.emulator is not None
        users = list(a_ids)[:CHECKED]
        codes = mint(self.stack.emulator, users)
        answers = post(s.gateway.port, [gql(MP_LOGIN, code=c) for c in codes], b'"LoginSuccess"')
        for u, answer in zip(users, answers, strict=True):
            if account_id(answer) != a_ids[u]:
                raise RuntimeError(f"{u} was not merged into A: {str(answer)[:300]}")

    def run(self, s: Section) -> None:
        assert s.gateway is not None
        conns = self.opts.connections
        expect = b'"isNewAccount":false,"account":{"id":'
        with self.meter.row(s.db, "loginByCode, merging login (issue 24)", None) as row:
            # a first batch, not counted: the rate, hence the ramp and the users to prepare
            bodies, a_ids = self.prepare(s, max(100, conns))
            warm = Spec(s.gateway.port, "queue", tuple(bodies), expect, conns, 120.0)
            estimate = trusted(self.meter.load([warm])[0], "warm-up merges")
            self.check(s, a_ids)
            ramp = min(max(self.opts.warm_seconds, 1.5 * conns / estimate.rate), 30.0)
            wanted = int(estimate.rate * (ramp + self.opts.duration) * 1.5) + 2 * conns
            bodies, a_ids = self.prepare(s, wanted)
            spec = Spec(
                s.gateway.port, "queue", tuple(bodies), expect, conns, self.opts.duration, ramp=ramp
            )
            stats: Stats = trusted(self.meter.load([spec], row, s.gateway)[0], "merging logins")
            self.check(s, a_ids)
            s.rates["merge"] = stats
            row.measured = stats.rate
            row.per_core = None
            row.detail = (
                f"{fmt_rate(stats)}, p50 {fmt_ms(stats.percentile(50))}, "
                f"p99 {fmt_ms(stats.percentile(99))} ({conns} clients, {stats.ok} merges "
                f"in {stats.elapsed:.1f} s)"
            )
