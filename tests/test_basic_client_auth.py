"""HTTP Basic client authentication (RFC 6749 §2.3.1) at both token endpoints: the partners'
client-credentials grant and the OpenID Connect provider's code exchange read the header by
one rule (``gateway.partners.oauth.basic_credentials``). The client id and the secret are each
form-urlencoded, joined by a colon and sent as base64 of their UTF-8 (RFC 7617); a header that
is not that authenticates no one, and each endpoint refuses as it always has (401
``invalid_client``, with its own ``WWW-Authenticate``)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.accounts import account_uuid
from tests.support.harness import Harness, MakeConfig, running
from tests.support.oidc import browser_of, code_for, log_in, register
from tests.support.partners import partner_config, partners_toml, secret_of
from tests.support.passwords import registered

PARTNER = ("crm", secret_of("crm"))
PARTNER_REALM = 'Basic realm="partners"'


def header(raw: bytes | str) -> dict[str, str]:
    token = base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw
    return {"authorization": f"Basic {token}"}


def encoded(text: str) -> str:
    """Every character percent-escaped: what a client that form-urlencodes all of it sends."""
    return "".join(f"%{b:02X}" for b in text.encode())


def with_junk(raw: bytes) -> str:
    """Base64 of ``raw`` with a character outside the alphabet in its middle."""
    token = base64.b64encode(raw).decode()
    return token[:4] + "!" + token[4:]


def refusals(client_id: str, secret: str) -> dict[str, dict[str, str]]:
    """Headers that must authenticate no one, though they carry the right id and secret."""
    return {
        "not base64 (its padding is wrong)": header("Y3Jt" + "Y"),
        "a character outside base64": header(with_junk(f"{client_id}:{secret}".encode())),
        "no colon, so no secret": header(f"{client_id}{secret}".encode()),
        "only the id": header(client_id.encode()),
        "not UTF-8": header(client_id.encode() + b":\xff" + secret.encode()),
        "the scheme alone": {"authorization": "Basic"},
    }


@pytest.fixture
async def gw(database_url: str, tmp_path: Path, make_config: MakeConfig) -> AsyncIterator[Harness]:
    config = partner_config(make_config(database_url), tmp_path, partners_toml(["crm"]))
    async with running(config) as harness:
        yield harness


async def partner_token(gw: Harness, headers: dict[str, str], **form: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", **form}
    return await gw.client.post("/oauth/token", data=data, headers=headers)


async def test_partners_read_a_form_urlencoded_id_and_secret(gw: Harness) -> None:
    client_id, secret = PARTNER
    plain = await partner_token(gw, header(f"{client_id}:{secret}".encode()))
    assert plain.status_code == 200, plain.text
    escaped = await partner_token(gw, header(f"{encoded(client_id)}:{encoded(secret)}".encode()))
    assert escaped.status_code == 200, escaped.text
    assert escaped.json()["scope"] == plain.json()["scope"]


async def test_partners_refuse_a_basic_header_that_is_not_rfc_6749s(gw: Harness) -> None:
    for name, headers in refusals(*PARTNER).items():
        answer = await partner_token(gw, headers)
        assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client"), name
        assert answer.headers["www-authenticate"] == PARTNER_REALM, name
        assert "access_token" not in answer.json(), name


async def test_partners_take_any_authorization_header_as_the_one_method(gw: Harness) -> None:
    """An Authorization header that is not Basic still counts as a method: the form's secret
    beside it is a second one (400), and alone it authenticates no one (401)."""
    client_id, secret = PARTNER
    bearer = {"authorization": "Bearer abc"}
    both = await partner_token(gw, bearer, client_id=client_id, client_secret=secret)
    assert (both.status_code, both.json()["error"]) == (400, "invalid_request")
    alone = await partner_token(gw, bearer)
    assert (alone.status_code, alone.json()["error"]) == (401, "invalid_client")
    assert alone.headers["www-authenticate"] == PARTNER_REALM


async def _code_exchange(gw: Harness, name: str) -> tuple[str, str, dict[str, str]]:
    """A confidential client, and a fresh code of a logged-in person's for it: (client id,
    secret, the exchange's form)."""
    client, secret = await register(gw, name)
    assert secret is not None
    person = await registered(gw, f"basic-{name.lower()}")
    async with browser_of(gw) as browser:
        await log_in(browser, account_uuid(person["account"]["id"]))
        code, _ = await code_for(browser, client)
    redirect = client.redirect_uris[0]
    return client.client_id, secret, {"grant_type": "authorization_code", "code": code,
                                      "redirect_uri": redirect}  # fmt: skip


async def test_the_provider_reads_a_form_urlencoded_id_and_secret(
    gw: Harness, rp: httpx.AsyncClient
) -> None:
    client_id, secret, form = await _code_exchange(gw, "Escaped")
    headers = header(f"{encoded(client_id)}:{encoded(secret)}".encode())
    answer = await rp.post("/oauth/token", data=form, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id_token"]


async def test_the_provider_refuses_a_basic_header_that_is_not_rfc_6749s(
    gw: Harness, rp: httpx.AsyncClient
) -> None:
    """authlib's refusal, the same for each (bytes that are not UTF-8 were a 500: authlib's
    reading of the header raised)."""
    client_id, secret, form = await _code_exchange(gw, "Refused")
    challenges = set()
    for name, headers in refusals(client_id, secret).items():
        answer = await rp.post("/oauth/token", data=form, headers=headers)
        assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client"), name
        assert "id_token" not in answer.json(), name
        challenges.add(answer.headers["www-authenticate"])
    # the code was never spent: the right header still exchanges it
    right = header(f"{client_id}:{secret}".encode())
    good = await rp.post("/oauth/token", data=form, headers=right)
    assert good.status_code == 200, good.text
    (challenge,) = challenges
    assert challenge.startswith('Basic error="invalid_client", error_description='), challenge


async def test_the_provider_reads_the_form_when_the_header_is_not_basic(
    gw: Harness, rp: httpx.AsyncClient
) -> None:
    client_id, secret, form = await _code_exchange(gw, "Posted")
    answer = await rp.post(
        "/oauth/token",
        data={**form, "client_id": client_id, "client_secret": secret},
        headers={"authorization": "Bearer abc"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["id_token"]
