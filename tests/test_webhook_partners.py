"""Partners' webhooks as operators run them (issue 24): the URL policy (no SSRF), refused at
``gateway partners add/webhook`` with a message and a non-zero exit, refused in the config file,
and checked again at delivery on the addresses resolved then; a partner added, re-keyed, set to
the feed only or disabled from the CLI while the gateway runs, taking effect without a restart."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from gateway.webhook_urls import RefusedUrl, UrlPolicy
from tests.support.harness import APPS_TOML
from tests.support.webhooks import (
    SECRET,
    Receiver,
    Start,
    append,
    db_of,
    events_toml,
    hooked_toml,
    listed,
    receiving,
    run_cli,
    until,
)

# -- the policy, without DNS ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://93.184.216.34/hook", "must be https"),
        ("ftp://93.184.216.34/hook", "https://host/path"),
        ("https:///hook", "https://host/path"),
        ("https://user:pw@93.184.216.34/hook", "no credentials"),
        ("https://93.184.216.34:99999/hook", "not a URL"),
        ("https://10.0.0.7/hook", "not a public address"),
        ("https://192.168.1.20/hook", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),
        ("https://100.64.0.1/hook", "not a public address"),
        ("https://[::ffff:10.0.0.7]/hook", "not a public address"),
        ("https://[fd00::1]/hook", "not a public address"),
        ("https://127.0.0.1/hook", "not a public address"),
        ("http://127.0.0.1:8080/hook", "allow_http_loopback"),
        ("http://localhost:8080/hook", "allow_http_loopback"),
    ],
)
def test_the_policy_refuses(url: str, needle: str) -> None:
    with pytest.raises(RefusedUrl, match=needle):
        UrlPolicy().form(url)


def test_what_the_settings_allow() -> None:
    assert UrlPolicy().form("https://93.184.216.34/hook").hostname == "93.184.216.34"
    loopback = UrlPolicy(loopback=True)
    loopback.form("http://127.0.0.1:8080/hook")
    loopback.form("http://localhost:8080/hook")
    with pytest.raises(RefusedUrl, match="not a public address"):
        loopback.form("https://10.0.0.7/hook")
    private = UrlPolicy(private_networks=True)
    private.form("https://10.0.0.7/hook")
    with pytest.raises(RefusedUrl, match="must be https"):
        private.form("http://10.0.0.7/hook")  # private networks: https still
    for never in ("https://0.0.0.0/hook", "https://224.0.0.1/hook"):
        with pytest.raises(RefusedUrl):
            private.form(never)


async def test_the_policy_judges_what_a_name_resolves_to() -> None:
    target = await UrlPolicy(loopback=True).resolve("http://localhost:8080/hook")
    assert all(a.is_loopback for a in target.addresses)
    assert target.host == "localhost"
    with pytest.raises(RefusedUrl, match="not a public address"):
        await UrlPolicy().resolve("https://localhost/hook")  # https, but to this machine
    with pytest.raises(RefusedUrl, match="does not resolve"):
        await UrlPolicy().resolve("https://no-such-host.invalid/hook")


# -- operators ------------------------------------------------------------------------------


def secrets_of(output: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in output.splitlines():
        key, _, value = line.partition("=")
        found[key] = value
    return found


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_refused_urls_exit_non_zero_with_the_reason(gateway: Start) -> None:
    async with gateway(events_toml(allow_http_loopback=False)):
        for url, needle in [
            ("http://93.184.216.34/hook", "must be https"),
            ("https://10.1.2.3/hook", "allow_private_networks"),
            ("http://127.0.0.1:9/hook", "allow_http_loopback"),
        ]:
            code, out, err = await run_cli("partners", "add", "bad-bot", "--webhook-url", url)
            assert (code, out) == (1, ""), err
            assert err.startswith("gateway: "), err
            assert needle in err, err
        code, out, _ = await run_cli("partners", "list")
        assert (code, out) == (0, "")  # nothing was half-added
        code, out, _ = await run_cli("partners", "add", "ok-bot", "--apps", "shop-mp")
        assert code == 0
        code, out, err = await run_cli(
            "partners", "webhook", "ok-bot", "--url", "https://10.0.0.1/"
        )
        assert (code, out, "not a public address" in err) == (1, "", True)
        code, out, err = await run_cli("partners", "webhook", "ok-bot", "--rotate-secret")
        assert (code, "--url" in err) == (1, True)


async def test_a_config_partners_webhook_is_checked_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(APPS_TOML + hooked_toml("http://10.0.0.1/hook"), encoding="utf-8")
    monkeypatch.setenv("TEST_CLUB_SECRET", "club-secret-0123456789")
    monkeypatch.setenv("GATEWAY_CONFIG", str(config))
    code, _, err = await run_cli("partners", "list")
    assert code == 2
    assert "partners[0]: Value error, webhook_url needs webhook_secret_env naming a set" in err
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    code, _, err = await run_cli("partners", "list")
    assert code == 2
    assert "GATEWAY_CONFIG.partners[0].webhook_url: a webhook URL must be https" in err


async def test_delivery_checks_the_url_again_on_what_it_resolves_to(gateway: Start) -> None:
    """``https://localhost`` passes the config's check (a name, https) but resolves to
    loopback, which this gateway may not call: every attempt is refused, none is sent."""
    receiver = Receiver()
    url = f"https://localhost:{receiver.port}/hook"
    toml = events_toml(allow_http_loopback=False, retry_seconds=[0.05]) + hooked_toml(url)
    async with receiving(receiver), gateway(toml) as gw:
        await append(db_of(gw), uuid.uuid4())

        async def failed() -> bool:
            return [e["status"] for e in await listed()] == ["failed"]

        await until(failed, "the refused delivery to fail")
        (line,) = await listed()
        assert line["attempts"] == 2
        assert line["lastError"].startswith("refused: localhost is at 127.0.0.1")
    assert receiver.arrivals == []


async def test_partners_changed_from_the_cli_take_effect_while_the_gateway_runs(
    gateway: Start,
) -> None:
    live, witness = Receiver(), Receiver()
    toml = events_toml() + hooked_toml(witness.url)  # a config partner, seeing every event too
    async with receiving(live), receiving(witness), gateway(toml) as gw:
        db = db_of(gw)
        added = await run_cli(
            "partners", "add", "live-bot", "--apps", "shop-mp", "--webhook-url", live.url
        )
        assert added[0] == 0, added
        printed = secrets_of(added[1])
        assert printed["webhook_secret"].startswith("whsec_")
        assert printed["client_secret"] != printed["webhook_secret"]
        live.secret = printed["webhook_secret"]
        first = str(await append(db, uuid.uuid4()))
        await until(lambda: live.ids() == [first], "the new partner's first event", 5.0)

        rotated = await run_cli("partners", "webhook", "live-bot", "--rotate-secret")
        live.secret = secrets_of(rotated[1])["webhook_secret"]
        second = str(await append(db, uuid.uuid4()))
        await until(lambda: live.ids() == [first, second], "an event under the new secret", 5.0)
        assert live.forged == []

        assert (await run_cli("partners", "webhook", "live-bot", "--disable"))[0] == 0
        third = str(await append(db, uuid.uuid4()))

        async def in_feed() -> bool:
            return [e["event"] for e in await listed(partner="live-bot", status="feed")] == [third]

        await until(in_feed, "the event in the feed only")

        assert (await run_cli("partners", "disable", "live-bot"))[0] == 0
        fourth = str(await append(db, uuid.uuid4()))
        await until(lambda: fourth in witness.ids(), "the witness to get the fourth event")
        assert fourth not in [e["event"] for e in await listed(partner="live-bot")]
        code, _, err = await run_cli("partners", "webhook", "hooked", "--disable")
        assert (code, "config" in err) == (1, True)
    assert live.ids() == [first, second]
    assert witness.ids() == [first, second, third, fourth]
    assert witness.forged == []


async def test_sandbox_mode_allows_loopback_receivers(workdir: Path) -> None:
    """No configuration at all: a newcomer points a partner at a receiver on this machine."""
    assert (await run_cli("migrate"))[0] == 0
    loopback = "http://127.0.0.1:8000/sandbox/webhooks"
    code, out, err = await run_cli(
        "partners", "add", "demo-bot", "--apps", "shop-mp", "--webhook-url", loopback
    )
    assert code == 0, err
    assert "webhook_secret=whsec_" in out
    code, out, err = await run_cli("partners", "webhook", "demo-bot", "--url", "http://10.0.0.1/")
    assert (code, "must be https" in err) == (1, True)
    code, out, _ = await run_cli("partners", "list")
    assert out.strip().endswith(f"\twebhook={loopback}")
