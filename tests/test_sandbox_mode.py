"""Sandbox mode: with no configuration at all, a newcomer can log in within a minute."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.keyfiles import SECRET_FILE, SIGNING_FILE
from tests.support.harness import LOGIN
from tests.support.sandbox import sandbox

DEMO_APPS = ["shop-mp", "club-mp", "news-oa", "web", "solo-mp"]
VIEWER = "{ viewer { id } }"


async def test_mint_a_code_and_log_in(workdir: Path) -> None:
    async with sandbox() as gw:
        first = await gw.login("shop-mp", "alice")
        assert first["isNewAccount"] is True
        assert first["accessToken"].count(".") == 2
        kinds = sorted(i["kind"] for i in first["account"]["identities"])
        assert kinds == ["WECHAT_OPENID", "WECHAT_UNIONID"]
        # the demo platform links alice's two mini-programs into one account
        club = await gw.login("club-mp", "alice")
        assert club["account"]["id"] == first["account"]["id"]
        # the banner's curl is a POST; that works as well
        code = await gw.mint("solo-mp", "alice", method="POST")
        body = await gw.gql(LOGIN, {"app": "solo-mp", "code": code, "client": {"platform": "ios"}})
        solo = body["data"]["loginByCode"]
        assert solo["__typename"] == "LoginSuccess"
        assert solo["account"]["id"] != first["account"]["id"]
    assert (workdir / "gateway.db").is_file()


async def test_a_minted_failure_is_a_typed_login_result(workdir: Path) -> None:
    async with sandbox() as gw:
        code = await gw.mint("shop-mp", "bob", errcode="40029")
        body = await gw.gql(LOGIN, {"app": "shop-mp", "code": code, "client": {"platform": "ios"}})
        result = body["data"]["loginByCode"]
        assert (result["__typename"], result["code"]) == ("CodeRejectedError", "INVALID_CODE")


async def test_sandbox_query_says_so_and_lists_the_demo_apps(workdir: Path) -> None:
    async with sandbox() as gw:
        body = await gw.gql("{ sandbox apps { key } }")
    assert body["data"]["sandbox"] is True
    assert [a["key"] for a in body["data"]["apps"]] == DEMO_APPS


async def test_playground_shows_the_sandbox_banner(workdir: Path) -> None:
    async with sandbox() as gw:
        page = await gw.client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "SANDBOX MODE" in page.text
    assert "sandbox/code?app=shop-mp" in page.text
    assert "loginByCode" in page.text


async def test_sandbox_mode_is_loud_in_the_logs(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway"):
        async with sandbox():
            pass
    loud = [r for r in caplog.records if "SANDBOX MODE" in r.getMessage()]
    assert loud
    assert loud[0].levelno >= logging.WARNING


async def test_generated_key_files_and_the_database_are_owner_only(workdir: Path) -> None:
    async with sandbox():
        pass
    for name in (SECRET_FILE, SIGNING_FILE, "gateway.db"):
        path = workdir / name
        assert path.is_file(), f"{name} not generated beside the SQLite file"
        assert path.stat().st_mode & 0o777 == 0o600, f"{name} is {oct(path.stat().st_mode)}"


async def test_restart_keeps_the_signing_key_and_the_accounts(workdir: Path) -> None:
    async with sandbox() as gw:
        login = await gw.login("shop-mp", "carol")
        jwks_before = (await gw.client.get("/.well-known/jwks.json")).json()
    secret_before = (workdir / SECRET_FILE).read_bytes()

    async with sandbox() as gw:
        viewer = await gw.gql(VIEWER, token=login["accessToken"])
        assert viewer["data"]["viewer"] == {"id": login["account"]["id"]}
        assert (await gw.client.get("/.well-known/jwks.json")).json() == jwks_before
        again = await gw.login("shop-mp", "carol")
        assert again["isNewAccount"] is False
        assert again["account"]["id"] == login["account"]["id"]
    assert (workdir / SECRET_FILE).read_bytes() == secret_before


@pytest.mark.parametrize(
    "params",
    [
        {"app": "no-such-app", "user": "alice"},
        {"user": "alice"},
        {"app": "shop-mp"},
        {"app": "shop-mp", "user": ""},
        {"app": "shop-mp", "user": "alice", "errcode": "abc"},
        {"app": "shop-mp", "user": "alice", "errcode": "-"},
        {"app": "shop-mp", "user": "alice", "errcode": "0"},
        {"app": "shop-mp", "user": "alice", "scope": ""},
        {"app": "news-oa", "user": "alice", "scope": "snsapi_everything"},
        pytest.param(
            {"app": "shop-mp", "user": "alice", "errcode": "--5"},
            id="errcode-double-minus",
        ),
        pytest.param(
            {"app": "shop-mp", "user": "alice", "errcode": "\u00b2"},
            id="errcode-superscript-two",
        ),
    ],
)
async def test_a_bad_code_request_is_a_400_with_a_hint(
    workdir: Path, params: dict[str, str]
) -> None:
    async with sandbox(raise_app_exceptions=False) as gw:  # a crash is a 500, not a raise
        answer = await gw.client.get("/sandbox/code", params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]
