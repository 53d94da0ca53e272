"""updateProfile over HTTP: nicknames bounded and free of control characters, checked by
WeChat's msg_sec_check when ``[profile] msg_sec_check = true`` (the sandbox refuses text with
its risky words), and left unchanged by any refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.accounts import oa_login
from tests.support.harness import Configure, Harness, running

UPDATE = """
mutation($nickname: String, $avatar: String) {
  updateProfile(input: {nickname: $nickname, avatar: $avatar}) {
    __typename
    ... on UpdateProfileSuccess { account { id nickname avatarUrl } }
    ... on Error { code message }
    ... on InvalidInputError { field }
    ... on ContentRejectedError { field }
  }
}
"""
NICKNAME = "{ viewer { nickname } }"
CHECK_PATH = "/wxa/msg_sec_check"


async def update(gw: Harness, token: str | None, **fields: Any) -> Any:
    body = await gw.gql(UPDATE, fields, token=token)
    assert "errors" not in body, body
    return body["data"]["updateProfile"]


async def nickname(gw: Harness, token: str) -> str | None:
    value: str | None = (await gw.gql(NICKNAME, token=token))["data"]["viewer"]["nickname"]
    return value


async def test_a_nickname_is_set_trimmed_and_cleared(gw: Harness) -> None:
    token = (await gw.login("shop-mp", "ann"))["accessToken"]
    done = await update(gw, token, nickname="  小安 🍓 ")
    assert done["__typename"] == "UpdateProfileSuccess"
    assert done["account"]["nickname"] == "小安 🍓"
    assert await nickname(gw, token) == "小安 🍓"

    unchanged = await update(gw, token)  # nothing sent: nothing changes
    assert unchanged["account"]["nickname"] == "小安 🍓"
    assert (await update(gw, token, nickname=""))["account"]["nickname"] is None
    assert await gw.upstream_calls(CHECK_PATH) == 0  # off by default


@pytest.mark.parametrize(
    "bad", ["x" * 65, "bell\x07", "two\nlines", "tab\there", "sep\u2028x", "del\x7f"]
)
async def test_a_nickname_too_long_or_with_control_characters_is_invalid(
    gw: Harness, bad: str
) -> None:
    token = (await gw.login("shop-mp", "bo"))["accessToken"]
    await update(gw, token, nickname="Bo")
    refused = await update(gw, token, nickname=bad)
    assert (refused["code"], refused["field"]) == ("INVALID_INPUT", "nickname")
    assert await nickname(gw, token) == "Bo"


async def test_sixty_four_characters_of_any_script_are_fine(gw: Harness) -> None:
    token = (await gw.login("shop-mp", "cy"))["accessToken"]
    name = "草莓" * 32
    assert (await update(gw, token, nickname=name))["account"]["nickname"] == name


async def test_without_a_login_nothing_is_updated(gw: Harness) -> None:
    refused = await update(gw, None, nickname="Nobody")
    assert (refused["__typename"], refused["code"]) == ("NotAuthenticatedError", "NOT_LOGGED_IN")


@pytest.fixture
async def checked(database_url: str, configure: Configure) -> AsyncIterator[Harness]:
    config = configure(database_url, profile={"msg_sec_check": True})
    async with running(config) as harness:
        yield harness


async def test_msg_sec_check_refuses_a_risky_nickname(checked: Harness) -> None:
    gw = checked
    token = (await gw.login("shop-mp", "dee"))["accessToken"]
    assert (await update(gw, token, nickname="Dee"))["account"]["nickname"] == "Dee"
    assert await gw.upstream_calls(CHECK_PATH) == 1

    refused = await update(gw, token, nickname="卖违禁品")
    assert (refused["__typename"], refused["code"]) == ("ContentRejectedError", "CONTENT_REJECTED")
    assert refused["field"] == "nickname"
    assert await gw.upstream_calls(CHECK_PATH) == 2
    assert await nickname(gw, token) == "Dee"

    # clearing the nickname needs no check
    assert (await update(gw, token, nickname=""))["account"]["nickname"] is None
    assert await gw.upstream_calls(CHECK_PATH) == 2


async def test_msg_sec_check_needs_a_mini_program_login(checked: Harness) -> None:
    gw = checked
    oa = await oa_login(gw, "eve", scope="snsapi_base")
    refused = await update(gw, oa["accessToken"], nickname="Eve")
    assert refused["code"] == "UNSUPPORTED_APP_KIND"
    assert await gw.upstream_calls(CHECK_PATH) == 0
