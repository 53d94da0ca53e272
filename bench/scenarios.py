"""The rows: what each one sends, what its answers must say, and what it is compared with.

bench/README.md describes every row and its target; each method here fills in the row of that
name, for one database section. The GraphQL documents are fixed strings (one body per login
code or token), so a request costs the load generator nothing but a write.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import replace

from bench import argon2_rate, loadgen, procs
from bench.loadgen import Spec, Stats
from bench.measure import Meter, Row, Target, fmt_ms, fmt_rate, mint, post, trusted
from bench.merge import MergeRow
from bench.options import Options, Section
from bench.stack import APP_KEY, Stack
from bench.trusted import TrustedRow
from gateway.credentials.passwords import default_threads

CLIENT = '{platform: "bench"}'
GW_LOGIN = (
    "mutation($code: String!) { loginByCode(input: "
    f'{{app: "{APP_KEY}", code: $code, client: {CLIENT}}}) '
    "{ __typename ... on LoginSuccess { accessToken refreshToken isNewAccount account { id } } "
    "... on Error { code message } } }"
)
REF_LOGIN = (
    f'mutation($code: String!) {{ loginByCode(app: "{APP_KEY}", code: $code) '
    "{ token userId isNew } }"
)
GW_FLOOR = "{ sandbox }"
BARE_FLOOR = "{ ping }"
VIEWER = "{ viewer { id } }"
PASSWORD_INPUT = f'{{username: $u, password: $p, app: "{APP_KEY}", client: {CLIENT}}}'
PW_LOGIN = (
    f"mutation($u: String!, $p: String!) {{ loginWithPassword(input: {PASSWORD_INPUT}) "
    "{ __typename ... on LoginSuccess { accessToken } ... on Error { code message } } }"
)
REGISTER = (
    f"mutation($u: String!, $p: String!) {{ registerWithPassword(input: {PASSWORD_INPUT}) "
    "{ __typename ... on LoginSuccess { accessToken } ... on Error { code message } } }"
)
REFRESH = (
    f"mutation($token: String!) {{ refreshToken(refreshToken: $token, client: {CLIENT}) "
    "{ __typename ... on RefreshSuccess { refreshToken accessToken } "
    "... on Error { code message } } }"
)

Step = Callable[[Section], None]


def gql(query: str, **variables: object) -> bytes:
    """A GraphQL request body, compact: the bytes on the wire are what the load generator sends."""
    payload: dict[str, object] = {"query": query}
    if variables:
        payload["variables"] = variables
    return json.dumps(payload, separators=(",", ":")).encode()


def login_tokens(answer: object) -> tuple[str, str]:
    """The access and refresh tokens of a successful ``loginByCode`` answer."""
    match answer:
        case {"data": {"loginByCode": {"accessToken": str(access), "refreshToken": str(refresh)}}}:
            return access, refresh
    raise RuntimeError(f"setup login without tokens: {str(answer)[:300]}")


def names(section: Section, prefix: str, count: int, cycle: int | None = None) -> list[str]:
    """Returning users cycle through ``cycle`` names; new ones are never seen before."""
    start = section.counters.get(prefix, 0)
    section.counters[prefix] = start + count
    if cycle:
        return [f"{prefix}-{(start + i) % cycle}" for i in range(count)]
    return [f"{prefix}-{start + i}" for i in range(count)]


class Scenarios:
    """The rows of one run, measured with ``meter`` against the servers of ``stack``."""

    def __init__(self, opts: Options, stack: Stack, meter: Meter) -> None:
        self.opts = opts
        self.stack = stack
        self.meter = meter

    def steps(self) -> list[tuple[str, Step]]:
        """Every row by its ``--only`` key, in the order they run.

        Later rows reuse rates taken by earlier ones (viewer the floor, the event-loop probe the
        viewer), memory reads the peak after the heavy rows, and scale replaces the gateway.
        """
        return [
            ("floor", self.floor),
            ("login", self.logins),
            ("merge", MergeRow(self.opts, self.stack, self.meter).run),
            ("viewer", self.viewer),
            ("trusted", TrustedRow(self.opts, self.stack, self.meter).run),
            ("password", self.passwords),
            ("refresh", self.refresh),
            ("eventloop", self.event_loop),
            ("memory", self.memory),
            ("latency", self.upstream_latency),
            ("scale", self.scale),
        ]

    def setup(self, s: Section) -> None:
        """Users that exist before any row: returning users, sessions, password accounts."""
        assert s.gateway is not None
        assert s.reference is not None
        assert self.stack.emulator is not None
        users = self.opts.users
        for port, query, expect in (
            (s.gateway.port, GW_LOGIN, b'"isNewAccount":true'),
            (s.reference.port, REF_LOGIN, b'"isNew":true'),
        ):
            codes = mint(self.stack.emulator, [f"returning-{i}" for i in range(users)])
            post(port, [gql(query, code=c) for c in codes], expect)
        # sessions to refresh, and one access token for the viewer rows
        count = self.opts.connections + 1
        codes = mint(self.stack.emulator, [f"returning-{i}" for i in range(count)])
        answers = post(s.gateway.port, [gql(GW_LOGIN, code=c) for c in codes], b'"LoginSuccess"')
        tokens = [login_tokens(a) for a in answers]
        s.access_token = tokens[0][0]
        s.refresh_tokens = [refresh for _, refresh in tokens[1:]]
        # password users: one per flooding connection
        s.passwords = [
            (f"pw-user-{i}", f"bench-{secrets.token_urlsafe(9)}-pass") for i in range(32)
        ]
        bodies = [gql(REGISTER, u=u, p=p) for u, p in s.passwords]
        headers = [[("X-Forwarded-For", f"10.99.0.{i + 1}")] for i in range(len(bodies))]
        post(s.gateway.port, bodies, b'"LoginSuccess"', headers=headers)

    def floor(self, s: Section) -> None:
        assert s.gateway is not None
        assert self.stack.bare is not None
        with self.meter.row(
            s.db, "floor: `{ sandbox }` vs bare strawberry", Target(">=", 0.9)
        ) as row:
            bare = self.meter.static_rate(
                self.stack.bare.port, gql(BARE_FLOOR), b'"pong"', proc=self.stack.bare
            )
            gw = self.meter.static_rate(
                s.gateway.port, gql(GW_FLOOR), b'"sandbox":', row=row, proc=s.gateway
            )
            s.rates["floor"] = gw
            row.measured = gw.rate / bare.rate
            row.detail = f"gateway {fmt_rate(gw)}, bare strawberry {fmt_rate(bare)}"

    def logins(self, s: Section) -> None:
        # issue 29's target for a returning user (issue 13's was 1.0), issue 13's for a new one
        for kind, target in (("returning", 1.5), ("new", 0.8)):
            self._login_row(s, kind, target)

    def _login_row(self, s: Section, kind: str, target: float) -> None:
        """Reference first, then the gateway, on users of the same ``kind``."""
        assert s.gateway is not None
        assert s.reference is not None
        assert self.stack.emulator is not None
        users = self.opts.users
        name = f"loginByCode, {kind} user, vs reference"
        with self.meter.row(s.db, name, Target(">=", target)) as row:
            flag = "false" if kind == "returning" else "true"

            def who(n: int, server: str) -> list[str]:
                if kind == "returning":
                    return names(s, "returning", n, users)
                return names(s, f"new-{server}", n)

            ref = self.meter.code_logins(
                s.reference.port,
                self.stack.emulator,
                lambda n: who(n, "ref"),
                lambda c: gql(REF_LOGIN, code=c),
                f'"isNew":{flag}'.encode(),
                proc=s.reference,
            )
            gw = self.meter.code_logins(
                s.gateway.port,
                self.stack.emulator,
                lambda n: who(n, "gw"),
                lambda c: gql(GW_LOGIN, code=c),
                f'"isNewAccount":{flag}'.encode(),
                row=row,
                proc=s.gateway,
            )
            s.rates[f"login-{kind}"] = gw
            row.measured = gw.rate / ref.rate
            row.detail = (
                f"gateway {fmt_rate(gw)} (p99 {fmt_ms(gw.percentile(99))}), "
                f"reference {fmt_rate(ref)} (p99 {fmt_ms(ref.percentile(99))})"
            )

    def viewer(self, s: Section) -> None:
        assert s.gateway is not None
        with self.meter.row(s.db, "viewer (bearer token) vs floor", Target(">=", 0.6)) as row:
            floor = s.rates.get("floor")
            if floor is None:  # ``--only`` left the floor row out
                floor = self.meter.static_rate(s.gateway.port, gql(GW_FLOOR), b'"sandbox":')
            stats = self.meter.static_rate(
                s.gateway.port,
                gql(VIEWER),
                b'"viewer":{"id"',
                headers=(("Authorization", f"Bearer {s.access_token}"),),
                row=row,
                proc=s.gateway,
            )
            s.rates["viewer"] = stats
            row.measured = stats.rate / floor.rate
            row.detail = f"viewer {fmt_rate(stats)}, floor {fmt_rate(floor)}"

    def password_spec(self, s: Section, connections: int) -> Spec:
        """Password logins, each client from its own address (the per-IP throttle)."""
        assert s.gateway is not None
        bodies = tuple(gql(PW_LOGIN, u=u, p=p) for u, p in s.passwords[:connections])
        return Spec(
            s.gateway.port,
            "cycle",
            bodies,
            b'"LoginSuccess"',
            connections=connections,
            duration=self.opts.duration,
            forwarded_for=True,
            ramp=self.opts.warm_seconds,
        )

    def passwords(self, s: Section) -> None:
        assert s.gateway is not None
        with self.meter.row(s.db, "loginWithPassword vs raw argon2id", Target(">=", 0.85)) as row:
            # the reference is taken before and after, half the time each, and the better
            # one kept: a busy machine can only slow it down
            # one, and on as many threads as the gateway hashes with (one fewer than the
            # cores: the event loop keeps one), so the ratio is what the gateway adds
            threads = default_threads()
            before = argon2_rate.verify_rate(self.opts.duration / 2, threads)
            spec = self.password_spec(s, 16)
            stats = trusted(self.meter.load([spec], row, s.gateway)[0], "password logins")
            raw, ms = max(before, argon2_rate.verify_rate(self.opts.duration / 2, threads))
            row.measured = stats.rate / raw
            row.per_core = stats.rate / (os.cpu_count() or 1)  # the loop's core and hashing's
            row.detail = (
                f"gateway {stats.rate:.1f}/s (p99 {fmt_ms(stats.percentile(99))}), argon2id "
                f"{raw:.1f}/s on {threads} of {os.cpu_count()} cores' threads ({ms:.1f} ms each)"
            )

    def refresh(self, s: Section) -> None:
        assert s.gateway is not None
        # issue 29: 1,000/s on PostgreSQL; the embedded SQLite default keeps issue 13's 600/s
        floor = 1000 if s.db == "postgres" else 600
        with self.meter.row(
            s.db, "refreshToken per second per core", Target(">=", floor, "/s")
        ) as row:
            tokens = s.refresh_tokens
            spec = Spec(
                s.gateway.port,
                "refresh",
                tuple(t.encode() for t in tokens),
                b'"RefreshSuccess"',
                connections=len(tokens),
                duration=self.opts.duration,
                refresh_query=REFRESH,
                ramp=self.opts.warm_seconds,
            )
            stats = trusted(self.meter.load([spec], row, s.gateway)[0], "refreshes")
            row.measured = stats.rate  # one gateway process: one core
            row.per_core = stats.rate
            row.detail = (
                f"{fmt_rate(stats)} in 1 gateway process, {len(tokens)} clients "
                f"(p99 {fmt_ms(stats.percentile(99))})"
            )

    def event_loop(self, s: Section) -> None:
        assert s.gateway is not None
        name = "viewer p99 during password flood vs idle"
        with self.meter.row(s.db, name, Target("<=", 3.0)) as row:
            # a light probe: a tenth of the viewer rate the gateway sustains, 5 to 50 a second
            viewer = s.rates.get("viewer")
            rate = min(50.0, max(5.0, viewer.rate / 10)) if viewer else 20.0
            probe = Spec(
                s.gateway.port,
                "probe",
                (gql(VIEWER),),
                b'"viewer":{"id"',
                connections=16,
                duration=self.opts.duration,
                headers=(("Authorization", f"Bearer {s.access_token}"),),
                rate=rate,
            )
            idle = trusted(loadgen.run_load([probe])[0], "idle probe")
            flood_spec = self.password_spec(s, 32)
            busy_probe = replace(probe, ramp=flood_spec.ramp)
            flood, busy = self.meter.load([flood_spec, busy_probe], row, s.gateway)
            trusted(flood, "password flood")
            trusted(busy, "probe under flood")
            row.measured = busy.percentile(99) / idle.percentile(99)
            row.detail = (
                f"p99 {fmt_ms(busy.percentile(99))} under {flood.rate:.0f} password logins/s, "
                f"{fmt_ms(idle.percentile(99))} idle (probe {rate:.0f}/s; p50 "
                f"{fmt_ms(busy.percentile(50))} vs {fmt_ms(idle.percentile(50))})"
            )

    def memory(self, s: Section) -> None:
        assert s.gateway is not None
        target = Target("<=", 110, " MiB")  # issue 29 (issue 13's was 120)
        with self.meter.row(s.db, "peak RSS per gateway process", target) as row:
            peaks = procs.peak_rss_mib(s.gateway.pid)
            row.measured = max(peaks.values())
            row.detail = "after the login, password and refresh rows: " + ", ".join(
                f"pid {pid} {mib:.0f} MiB" for pid, mib in peaks.items()
            )

    def upstream_latency(self, s: Section) -> None:
        """Returning-user logins with many clients, WeChat at 0 ms and then slow."""
        assert s.gateway is not None
        assert self.stack.emulator is not None
        clients = self.opts.latency_clients
        name = f"loginByCode {self.opts.latency_ms:g} ms upstream, {clients} clients, vs 0 ms"
        with self.meter.row(s.db, name, Target(">=", 0.8)) as row:
            fast = self._returning_logins(s, s.gateway, self.stack.emulator)
            slow, peak = self._slow_upstream_logins(s, row)
            row.measured = slow.rate / fast.rate
            row.detail = (
                f"{fmt_rate(slow)} (p99 {fmt_ms(slow.percentile(99))}) vs {fmt_rate(fast)} "
                f"(p99 {fmt_ms(fast.percentile(99))}); peak RSS {peak:.0f} MiB"
            )
            for label, stats in (("slow", slow), ("0 ms", fast)):
                if stats.error_ratio() > 0.01:
                    row.failures += (
                        f"; {label}: {100 * stats.error_ratio():.0f}% failed ({stats.error_sample})"
                    )
            row.detail += row.failures

    def _slow_upstream_logins(self, s: Section, row: Row) -> tuple[Stats, float]:
        """The same logins through a gateway of its own on the slow emulator, and its peak RSS."""
        assert self.stack.slow_emulator is not None
        slow_gw = self.stack.start_gateway(
            f"gateway-{s.db}-slow-upstream", self.stack.gateway_env(s.url, self.stack.slow_emulator)
        )
        try:
            slow = self._returning_logins(s, slow_gw, self.stack.slow_emulator, row)
            peak = max(procs.peak_rss_mib(slow_gw.pid).values())
        finally:
            self.stack.stop(slow_gw)
        return slow, peak

    def _returning_logins(
        self, s: Section, gateway: procs.Proc, emulator: procs.Proc, row: Row | None = None
    ) -> Stats:
        """``--latency-clients`` returning-user logins; up to half may fail (the row says so)."""
        users = self.opts.users

        def returning(n: int) -> list[str]:
            return names(s, "returning", n, users)

        def body(c: str) -> bytes:
            return gql(GW_LOGIN, code=c)

        return self.meter.code_logins(
            gateway.port,
            emulator,
            returning,
            body,
            b'"isNewAccount":false',
            connections=self.opts.latency_clients,
            row=row,
            proc=gateway,
            max_errors=0.5,
        )

    def scale(self, s: Section) -> None:
        """Viewer with one gateway process, then two; the two-process gateway stays on."""
        assert s.gateway is not None
        with self.meter.row(s.db, "viewer, 2 gateway processes vs 1", Target(">=", 1.7)) as row:
            headers = (("Authorization", f"Bearer {s.access_token}"),)
            conns = 2 * self.opts.connections
            one = self.meter.static_rate(
                s.gateway.port, gql(VIEWER), b'"viewer":{"id"', headers=headers, connections=conns
            )
            self.stack.stop(s.gateway)
            two_gw = self.stack.start_gateway(f"gateway-{s.db}-2-workers", s.env, workers=2)
            s.gateway = two_gw
            two = self.meter.static_rate(
                two_gw.port,
                gql(VIEWER),
                b'"viewer":{"id"',
                headers=headers,
                connections=conns,
                row=row,
                proc=two_gw,
            )
            peaks = procs.peak_rss_mib(two_gw.pid)
            row.measured = two.rate / one.rate
            row.detail = (
                f"{fmt_rate(two)} vs {fmt_rate(one)} ({conns} connections); peak RSS "
                + ", ".join(f"{mib:.0f}" for mib in peaks.values())
                + " MiB"
            )
