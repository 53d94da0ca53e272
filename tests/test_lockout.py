"""No lockout by strangers (issue 12, item 3; issue 30), after OWASP: attempts count per (account,
address) strictly, failures per address, per account on a queue that delays and never refuses a
stranger slower than its delay, and a device that logged in before (its signed
``gw_device`` cookie) counts on its own. The same for partner secrets at ``/oauth/token``."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from gateway.credentials.devices import COOKIE
from tests.support.harness import Configure, Harness, MakeConfig, running
from tests.support.partners import partner_config, partners_toml, secret_of
from tests.support.passwords import from_ip, password_login, registered

# per account: 30 free failures, then one check per 0.05 s, queued at most 0.5 s ahead
STRICT = {
    "failure_factor": 3,
    "wait_step_seconds": 60,
    "account_delay_seconds": 0.05,
    "account_max_delay_seconds": 0.5,
}


def code(result: dict[str, object]) -> object:
    return result.get("code", result["__typename"])


@asynccontextmanager
async def strict(database_url: str, configure: Configure) -> AsyncIterator[Harness]:
    async with running(configure(database_url, throttle=STRICT)) as gw:
        yield gw


async def guesses(gw: Harness, username: str, ips: list[str]) -> list[object]:
    codes = []
    for n, ip in enumerate(ips):
        async with from_ip(gw, ip) as http:
            codes.append(code(await password_login(gw, username, f"guess-{n}-qq", http=http)))
    return codes


async def test_ten_failures_from_ten_addresses_do_not_lock_the_owner_out(gw: Harness) -> None:
    """The issue's attack, on the default policy (10 free failures per key)."""
    await registered(gw, "wendy")
    spoofed = [f"203.0.113.{n}" for n in range(1, 12)]
    assert await guesses(gw, "wendy", spoofed) == ["INVALID_CREDENTIALS"] * 11
    async with from_ip(gw, "198.51.100.200") as owner:
        assert code(await password_login(gw, "wendy", http=owner)) == "LoginSuccess"


async def test_one_address_is_held_for_that_account_while_the_owner_logs_in(
    database_url: str, configure: Configure
) -> None:
    async with strict(database_url, configure) as gw:
        await registered(gw, "xena")
        assert await guesses(gw, "xena", ["203.0.113.5"] * 4) == (
            ["INVALID_CREDENTIALS"] * 3 + ["THROTTLED"]
        )
        async with from_ip(gw, "203.0.113.5") as attacker, from_ip(gw, "198.51.100.7") as owner:
            assert code(await password_login(gw, "xena", http=attacker)) == "THROTTLED"
            assert code(await password_login(gw, "xena", http=owner)) == "LoginSuccess"


async def test_the_per_account_queue_slows_strangers_but_never_a_known_device(
    database_url: str, configure: Configure
) -> None:
    async with strict(database_url, configure) as gw:
        await registered(gw, "yara")
        async with from_ip(gw, "198.51.100.8") as device:
            assert code(await password_login(gw, "yara", http=device)) == "LoginSuccess"
            assert device.cookies.get(COOKIE)
        # 30 failures (the per-account allowance for STRICT) from 30 addresses, 1 each
        spread = [f"203.0.113.{n}" for n in range(1, 31)]
        assert set(await guesses(gw, "yara", spread)) == {"INVALID_CREDENTIALS"}
        async with from_ip(gw, "198.51.100.9") as stranger:  # queued a moment, not refused
            assert code(await password_login(gw, "yara", http=stranger)) == "LoginSuccess"

        async def flood(n: int) -> object:
            async with from_ip(gw, f"192.0.2.{n + 1}") as http:
                return code(await password_login(gw, "yara", f"flood-{n}-x", http=http))

        async def known_device() -> object:
            async with from_ip(gw, "198.51.100.8") as device:
                device.cookies.update({COOKIE: str(gw_cookie(gw, "yara"))})
                return code(await password_login(gw, "yara", http=device))

        *flooded, mine = await asyncio.gather(*(flood(n) for n in range(30)), known_device())
        assert set(flooded) <= {"INVALID_CREDENTIALS", "THROTTLED"}
        assert mine == "LoginSuccess"  # the device's own count, never the username's queue


def gw_cookie(gw: Harness, username: str) -> str:
    return str(gw.app.state.api.passwords.device_cookie(username))


async def test_a_device_cookie_is_worth_nothing_for_another_username(
    database_url: str, configure: Configure
) -> None:
    async with strict(database_url, configure) as gw:
        await registered(gw, "zack")
        await registered(gw, "zoe")
        async with from_ip(gw, "203.0.113.50") as attacker:
            assert code(await password_login(gw, "zack", http=attacker)) == "LoginSuccess"
            for n in range(3):  # zack's cookie, used against zoe: counted as a stranger
                assert code(await password_login(gw, "zoe", f"bad-{n}-pass", http=attacker)) == (
                    "INVALID_CREDENTIALS"
                )
            assert code(await password_login(gw, "zoe", "bad-3-pass", http=attacker)) == (
                "THROTTLED"
            )


async def test_a_known_device_has_its_own_count(database_url: str, configure: Configure) -> None:
    """A stolen device cookie does not give unlimited guesses: it is throttled on its own."""
    async with strict(database_url, configure) as gw:
        await registered(gw, "abel")
        async with from_ip(gw, "198.51.100.60") as device:
            assert code(await password_login(gw, "abel", http=device)) == "LoginSuccess"
            results = [
                code(await password_login(gw, "abel", f"oops-{n}-pw", http=device))
                for n in range(4)
            ]
        assert results == ["INVALID_CREDENTIALS"] * 3 + ["THROTTLED"]


async def test_the_device_cookie_is_http_only_and_scoped(gw: Harness) -> None:
    await registered(gw, "beth")
    body = {
        "query": 'mutation($c: ClientInput!) { loginWithPassword(input: {username: "beth", '
        'password: "violet-Tractor-88", app: "shop-mp", client: $c}) { __typename } }',
        "variables": {"c": {"platform": "ios"}},
    }
    answer = await gw.client.post("/graphql", json=body)
    header = answer.headers["set-cookie"].lower()
    assert header.startswith(f"{COOKIE}=")
    assert "httponly" in header
    assert "samesite=strict" in header
    assert "path=/graphql" in header


# -- partner secrets --------------------------------------------------------------------------


@pytest.fixture
async def pgw(database_url: str, tmp_path: Path, make_config: MakeConfig) -> AsyncIterator[Harness]:
    config = partner_config(make_config(database_url), tmp_path, partners_toml(["crm"]))
    async with running(config) as harness:
        yield harness


async def oauth_from(gw: Harness, ip: str, secret: str) -> httpx.Response:
    basic = base64.b64encode(f"crm:{secret}".encode()).decode()
    async with from_ip(gw, ip) as http:
        return await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"authorization": f"Basic {basic}"},
        )


async def test_bad_secrets_from_one_address_do_not_lock_the_partner_out(pgw: Harness) -> None:
    for _ in range(11):
        await oauth_from(pgw, "203.0.113.66", "wrong-secret")
    held = await oauth_from(pgw, "203.0.113.66", secret_of("crm"))
    assert (held.status_code, held.json()["error"]) == (429, "slow_down")
    served = await oauth_from(pgw, "10.20.30.40", secret_of("crm"))
    assert served.status_code == 200, served.text
    assert served.json()["access_token"]


async def test_bad_secrets_spread_over_addresses_do_not_lock_the_partner_out(pgw: Harness) -> None:
    for n in range(15):
        assert (await oauth_from(pgw, f"203.0.113.{n + 1}", "wrong-secret")).status_code == 401
    assert (await oauth_from(pgw, "10.20.30.40", secret_of("crm"))).status_code == 200
