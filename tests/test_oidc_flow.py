"""The OpenID Connect provider in process: the code flow with PKCE, the id_token, userinfo,
refresh, revocation, consent, prompts, pairwise subjects, and every refusal that must be an
error page rather than a redirect. The browser's login is opened by the real
``BrowserSessions``; the live relying party (authlib's client against ``gateway serve``,
logging in on the hosted page) is in test_oidc_live.py."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from gateway.audit import ClientInfo
from gateway.clients.registry import ClientView
from gateway.clients.tables import OidcCode, OidcConsent
from gateway.config import ThrottleModel
from gateway.oidc.authorize import redirect_origins
from gateway.rights.service import Operator
from gateway.store.models import AuditEvent
from tests.support.accounts import account_uuid, count, oa_login, two_accounts_of_dave
from tests.support.harness import Harness
from tests.support.oidc import (
    ORIGIN,
    authorize_params,
    browser_of,
    code_for,
    exchange,
    id_token_claims,
    log_in,
    pkce,
    redirected,
    register,
)
from tests.support.passwords import registered


@pytest.fixture
async def browser(gw: Harness) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_of(gw) as client:
        yield client


async def _person(gw: Harness, browser: httpx.AsyncClient, name: str) -> uuid.UUID:
    account = await registered(gw, name)
    account_id = account_uuid(account["account"]["id"])
    await log_in(browser, account_id)
    return account_id


async def test_code_flow_with_pkce_gives_a_signed_id_token_userinfo_refresh_and_revocation(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    account_id = await _person(gw, browser, "oidc-alice")
    client, secret = await register(gw)
    verifier, challenge = pkce()
    code, asked = await code_for(browser, client, challenge)
    answer = await exchange(rp, client, secret, code, verifier)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["refresh_token"]
    header, claims = await id_token_claims(rp, tokens["id_token"])
    assert header["alg"] == "ES256"
    assert header["kid"]
    assert claims["iss"] == ORIGIN
    assert claims["aud"] == client.client_id
    assert claims["sub"] == str(account_id)  # first-party: the account's own id
    assert claims["nonce"] == asked["nonce"]
    assert claims["amr"] == ["pwd"]
    assert claims["exp"] > claims["iat"] >= claims["auth_time"]
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    info = (await rp.get("/oauth/userinfo", headers=bearer)).json()
    assert info["sub"] == claims["sub"]
    renewed = await rp.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(client.client_id, secret or ""),
    )
    assert renewed.status_code == 200, renewed.text
    fresh = renewed.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    revoked = await rp.post(
        "/oauth/revoke",
        data={"token": fresh["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(client.client_id, secret or ""),
    )
    assert revoked.status_code == 200
    after = await rp.get(
        "/oauth/userinfo", headers={"authorization": f"Bearer {fresh['access_token']}"}
    )
    assert after.status_code == 401
    events = await _audit(gw, account_id)
    assert ("oidc_authorize", client.client_id) in events
    assert ("oidc_token", client.client_id) in events
    assert ("refresh", None) in events
    assert ("logout", None) in events


async def _audit(gw: Harness, account_id: uuid.UUID) -> list[tuple[str, str | None]]:
    """The account's audit events: kind, and the client they name."""
    async with gw.app.state.services.db.reader() as s:
        rows = await s.execute(select(AuditEvent).where(col(AuditEvent.account_id) == account_id))
        return [(e.kind, e.detail.get("client_id")) for e in rows.scalars()]


async def test_discovery_names_the_origin_as_issuer(rp: httpx.AsyncClient) -> None:
    body = (await rp.get("/.well-known/openid-configuration")).json()
    assert body["issuer"] == ORIGIN
    assert body["jwks_uri"] == f"{ORIGIN}/.well-known/jwks.json"
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["id_token_signing_alg_values_supported"] == ["ES256"]


def _error_page(response: httpx.Response) -> None:
    """An HTML error page: never a redirect, so no URL the request named is followed."""
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


async def test_an_unknown_client_or_redirect_uri_is_an_error_page_never_a_redirect(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    await _person(gw, browser, "oidc-bob")
    client, _ = await register(gw)
    _, challenge = pkce()
    params = authorize_params(client, challenge)
    evil = params | {"redirect_uri": "https://evil.example/callback"}
    _error_page(await browser.get("/oauth/authorize", params=evil))
    prefix = params | {"redirect_uri": client.redirect_uris[0] + "/more"}
    _error_page(await browser.get("/oauth/authorize", params=prefix))
    unknown = evil | {"client_id": "no-such-client"}
    _error_page(await browser.get("/oauth/authorize", params=unknown))


async def test_a_public_client_must_use_pkce_s256_and_plain_is_refused(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    await _person(gw, browser, "oidc-carol")
    client, secret = await register(gw, public=True)
    assert secret is None
    without = redirected(await browser.get("/oauth/authorize", params=authorize_params(client)))
    assert without["error"] == "invalid_request"
    verifier, _ = pkce()
    plain = authorize_params(client, code_challenge=verifier, code_challenge_method="plain")
    assert redirected(await browser.get("/oauth/authorize", params=plain))["error"] == (
        "invalid_request"
    )
    implicit = authorize_params(client, code_challenge=verifier)  # no method: plain by default
    assert redirected(await browser.get("/oauth/authorize", params=implicit))["error"] == (
        "invalid_request"
    )
    verifier, challenge = pkce()
    code, _ = await code_for(browser, client, challenge)
    missing = await exchange(rp, client, None, code)  # no verifier: refused
    assert missing.status_code == 400
    wrong = await exchange(rp, client, None, code, pkce()[0])
    assert wrong.json()["error"] == "invalid_grant"


async def test_a_reused_code_is_refused_and_revokes_what_the_first_use_issued(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    await _person(gw, browser, "oidc-dave")
    client, secret = await register(gw)
    code, _ = await code_for(browser, client)
    first = await exchange(rp, client, secret, code)
    assert first.status_code == 200, first.text
    bearer = {"authorization": f"Bearer {first.json()['access_token']}"}
    assert (await rp.get("/oauth/userinfo", headers=bearer)).status_code == 200
    again = await exchange(rp, client, secret, code)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"
    assert (await rp.get("/oauth/userinfo", headers=bearer)).status_code == 401
    refreshed = await rp.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]},
        auth=(client.client_id, secret or ""),
    )
    assert refreshed.json()["error"] == "invalid_grant"


async def test_a_code_is_only_for_its_client_and_secret(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    await _person(gw, browser, "oidc-erin")
    client, secret = await register(gw)
    other, other_secret = await register(gw, "Other")
    code, _ = await code_for(browser, client)
    wrong_secret = await exchange(rp, client, "not-the-secret", code)
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["error"] == "invalid_client"
    stolen = await rp.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code,
              "redirect_uri": client.redirect_uris[0]},
        auth=(other.client_id, other_secret or ""),
    )  # fmt: skip
    assert stolen.json()["error"] == "invalid_grant"
    assert (await exchange(rp, client, secret, code)).status_code == 200


async def test_prompt_none_without_a_login_answers_login_required_with_the_state(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    client, _ = await register(gw)
    params = authorize_params(client, prompt="none")
    answer = redirected(await browser.get("/oauth/authorize", params=params))
    assert answer["error"] == "login_required"
    assert answer["state"] == params["state"]
    assert "code" not in answer


async def test_no_login_goes_to_the_hosted_login_page_and_back(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    client, _ = await register(gw)
    response = await browser.get("/oauth/authorize", params=authorize_params(client))
    assert response.status_code == 302
    target = urlsplit(response.headers["location"])
    assert target.path == "/login"
    back = parse_qs(target.query)["next"][0]
    assert back.startswith("/oauth/authorize?")
    assert parse_qs(urlsplit(back).query)["client_id"] == [client.client_id]


async def test_prompt_login_asks_again_and_wants_a_newer_login(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    account_id = await _person(gw, browser, "oidc-frank")
    client, _ = await register(gw)
    response = await browser.get(
        "/oauth/authorize", params=authorize_params(client, prompt="login")
    )
    target = urlsplit(response.headers["location"])
    query = parse_qs(target.query)
    assert target.path == "/login"
    assert query["prompt"] == ["login"]
    back = query["next"][0]
    assert "prompt=login" not in back
    stale = await browser.get(back)  # the same old login: to the login page again
    assert urlsplit(stale.headers["location"]).path == "/login"
    await log_in(browser, account_id)
    assert "code=" in (await browser.get(back)).headers["location"]


async def test_pairwise_subjects_differ_per_client_and_first_party_sees_the_account_id(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    account_id = await _person(gw, browser, "oidc-grace")
    subjects = []
    for name, first_party in (("One", False), ("Two", False), ("Own", True)):
        client, secret = await register(gw, name, first_party=first_party)
        code = await _consented_code(gw, browser, client)
        tokens = (await exchange(rp, client, secret, code)).json()
        subjects.append((await id_token_claims(rp, tokens["id_token"]))[1]["sub"])
    one, two, own = subjects
    assert one != two
    assert str(account_id) not in (one, two)
    assert own == str(account_id)


async def _consented_code(gw: Harness, browser: httpx.AsyncClient, client: ClientView) -> str:
    """A code, through the consent page when the client needs one."""
    params = authorize_params(client)
    response = await browser.get("/oauth/authorize", params=params)
    if response.status_code == 200:
        response = await _allow(browser, response)
    answer = redirected(response)
    assert answer["state"] == params["state"]
    return answer["code"]


async def _allow(
    browser: httpx.AsyncClient, page: httpx.Response, decision: str = "allow"
) -> httpx.Response:
    form = _form(page.text)
    return await browser.post(
        form["action"],
        data={"csrf_token": form["csrf_token"], "decision": decision},
        headers={"origin": ORIGIN},
    )


def _form(html: str) -> dict[str, str]:
    action = re.search(r'<form method="post" action="([^"]+)"', html)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert action, html
    assert token, html
    return {"action": unescape(action.group(1)), "csrf_token": token.group(1)}


async def test_consent_is_asked_once_remembered_and_revocable(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    account_id = await _person(gw, browser, "oidc-heidi")
    client, secret = await register(gw, "Partner site", first_party=False)
    params = authorize_params(client)
    page = await browser.get("/oauth/authorize", params=params)
    assert page.status_code == 200
    assert "Partner site" in page.text
    policy = page.headers["content-security-policy"]
    assert "form-action 'self' https://shop.example" in policy
    forged = await browser.post(
        _form(page.text)["action"], data={"decision": "allow"}, headers={"origin": ORIGIN}
    )
    assert forged.status_code == 403  # no CSRF token: nothing granted
    denied = redirected(await _allow(browser, page, "deny"))
    assert denied["error"] == "access_denied"
    assert denied["state"] == params["state"]
    silent = authorize_params(client, prompt="none")
    assert redirected(await browser.get("/oauth/authorize", params=silent))["error"] == (
        "consent_required"
    )
    code = redirected(await _allow(browser, await browser.get("/oauth/authorize", params=params)))[
        "code"
    ]
    tokens = (await exchange(rp, client, secret, code)).json()
    again = await browser.get("/oauth/authorize", params=authorize_params(client))
    assert "code=" in again.headers["location"]  # remembered: no page this time
    consents = gw.app.state.oidc.consents
    assert [c.client_id for c in await consents.of(account_id)] == [client.client_id]
    assert await consents.revoke(account_id, client.client_id, ClientInfo("test"))
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    assert (await rp.get("/oauth/userinfo", headers=bearer)).status_code == 401
    assert (await browser.get("/oauth/authorize", params=params)).status_code == 200


async def test_userinfo_claims_follow_the_scope_and_the_clients_entitlement(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    await _person(gw, browser, "oidc-ivan")
    client, secret = await register(gw, scopes=("openid",))
    code, _ = await code_for(browser, client)
    tokens = (await exchange(rp, client, secret, code)).json()
    assert tokens["scope"] == "openid"
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    info = (await rp.get("/oauth/userinfo", headers=bearer)).json()
    assert set(info) == {"sub"}
    assert (await rp.get("/oauth/userinfo")).status_code == 401


async def test_logout_returns_only_to_a_registered_uri_and_ends_the_browser_login(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    await _person(gw, browser, "oidc-judy")
    back = "https://shop.example/bye"
    client, secret = await register(gw, logout=(back,))
    code, _ = await code_for(browser, client)
    id_token = (await exchange(rp, client, secret, code)).json()["id_token"]
    evil = {"id_token_hint": id_token, "post_logout_redirect_uri": "https://evil.example/"}
    _error_page(await browser.get("/oauth/logout", params=evil))
    assert (
        "code="
        in (await browser.get("/oauth/authorize", params=authorize_params(client))).headers[
            "location"
        ]
    )
    done = await browser.get(
        "/oauth/logout",
        params={"id_token_hint": id_token, "post_logout_redirect_uri": back, "state": "s1"},
    )
    assert done.status_code == 302
    assert done.headers["location"] == f"{back}?state=s1"
    after = await browser.get("/oauth/authorize", params=authorize_params(client))
    assert urlsplit(after.headers["location"]).path == "/login"


async def test_a_disabled_client_is_refused_with_an_error_page(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    await _person(gw, browser, "oidc-ken")
    client, _ = await register(gw)
    clients = gw.app.state.oidc.clients
    await clients.disable(client.client_id)
    _error_page(await browser.get("/oauth/authorize", params=authorize_params(client)))


SITES = "{ viewer { authorizedSites { clientId name scopes grantedAt } } }"
REVOKE_SITE = """
mutation($clientId: String!) {
  revokeSiteConsent(clientId: $clientId) {
    __typename
    ... on RevokeSiteConsentSuccess { revoked }
    ... on Error { code }
  }
}"""


async def test_the_viewer_lists_and_revokes_the_sites_it_consented_to(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    account = await registered(gw, "oidc-laura")
    await log_in(browser, account_uuid(account["account"]["id"]))
    token = account["accessToken"]
    client, secret = await register(gw, "Forum", first_party=False)
    code = await _consented_code(gw, browser, client)
    site_tokens = (await exchange(rp, client, secret, code)).json()
    sites = (await gw.gql(SITES, token=token))["data"]["viewer"]["authorizedSites"]
    assert [(s["clientId"], s["name"]) for s in sites] == [(client.client_id, "Forum")]
    assert set(sites[0]["scopes"]) == {"openid", "profile", "phone"}
    revoked = await gw.gql(REVOKE_SITE, {"clientId": client.client_id}, token=token)
    assert revoked["data"]["revokeSiteConsent"] == {
        "__typename": "RevokeSiteConsentSuccess", "revoked": True,
    }  # fmt: skip
    assert (await gw.gql(SITES, token=token))["data"]["viewer"]["authorizedSites"] == []
    bearer = {"authorization": f"Bearer {site_tokens['access_token']}"}
    assert (await rp.get("/oauth/userinfo", headers=bearer)).status_code == 401
    again = await gw.gql(REVOKE_SITE, {"clientId": client.client_id}, token=token)
    assert again["data"]["revokeSiteConsent"]["code"] == "NOT_FOUND"


async def test_repeated_bad_client_secrets_are_throttled(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    await _person(gw, browser, "oidc-mallory")
    client, secret = await register(gw)
    code, _ = await code_for(browser, client)
    free = ThrottleModel().failure_factor
    assert gw.config.throttle.failure_factor == free
    for _ in range(free):
        assert (await exchange(rp, client, "wrong-secret", code)).status_code == 401
    held = await exchange(rp, client, secret, code)  # even the right secret must wait now
    assert held.status_code == 429
    assert held.json()["error"] == "slow_down"
    assert int(held.headers["retry-after"]) > 0


def test_the_login_page_may_post_on_to_an_authorize_requests_redirect_origin() -> None:
    """web's login page names it in its CSP form-action (Chromium checks the redirects)."""
    target = "/oauth/authorize?client_id=a&redirect_uri=https%3A%2F%2Fshop.example%3A8443%2Fcb"
    assert redirect_origins(target) == ["https://shop.example:8443"]
    assert redirect_origins("/oauth/authorize?redirect_uri=javascript%3Aalert(1)") == []
    assert redirect_origins("/elsewhere?redirect_uri=https%3A%2F%2Fa.example%2F") == []
    assert redirect_origins("https://evil.example/oauth/authorize?redirect_uri=https://a/") == []


async def test_a_nonce_that_cannot_be_kept_is_refused_back_to_the_site(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    await _person(gw, browser, "oidc-nia")
    client, _ = await register(gw)
    for nonce in ("n" * 256, "nul\x00byte"):
        params = authorize_params(client, nonce=nonce)
        answer = redirected(await browser.get("/oauth/authorize", params=params))
        assert answer["error"] == "invalid_request"
        assert answer["state"] == params["state"]


async def test_logout_without_an_id_token_hint_asks_on_the_hosted_page(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    await _person(gw, browser, "oidc-oscar")
    client, _ = await register(gw, logout=("https://shop.example/bye",))
    asked = await browser.get(
        "/oauth/logout", params={"post_logout_redirect_uri": "https://shop.example/bye"}
    )
    assert asked.status_code == 303
    assert asked.headers["location"] == "/logout"
    still = await browser.get("/oauth/authorize", params=authorize_params(client))
    assert "code=" in still.headers["location"]  # nobody was logged out


def test_every_message_the_providers_pages_show_is_in_both_catalogues() -> None:
    """The consent and logged-out pages, the error pages' titles and details, the scopes."""
    from babel.messages.pofile import read_po

    from gateway import i18n
    from gateway.oidc import authorize

    root = Path(authorize.__file__).parent
    shown = set(authorize.SCOPE_TEXT.values())
    for template in (root.parent / "web" / "templates").glob("oidc_*.html"):
        shown |= set(re.findall(r'_\("([^"]+)"\)', template.read_text(encoding="utf-8")))
    for source in root.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        for call in re.findall(
            r'(?:error\(\s*request,|_refused\(\s*request,\s*svc,)\s*((?:"[^"]+",?\s*){1,2})', text
        ):
            shown |= set(re.findall(r'"([^"]+)"', call))
    catalogues = {}
    for locale in i18n.LOCALES:
        with i18n.catalogue_path(locale, "oidc").open("rb") as fh:
            catalogues[locale] = {str(m.id): str(m.string) for m in read_po(fh) if m.id}
    assert len(shown) > 15
    assert shown <= set(catalogues["zh-CN"]), shown - set(catalogues["zh-CN"])
    assert set(catalogues["zh-CN"]) == set(catalogues["en"])
    assert all(catalogues["zh-CN"].values())
    assert all(catalogues["en"][k] == k for k in catalogues["en"])


async def test_a_public_client_exchanges_refreshes_and_revokes_by_its_access_token(
    gw: Harness, browser: httpx.AsyncClient, rp: httpx.AsyncClient
) -> None:
    await _person(gw, browser, "oidc-pat")
    client, _ = await register(gw, "SPA", public=True)
    verifier, challenge = pkce()
    code, _ = await code_for(browser, client, challenge)
    tokens = (await exchange(rp, client, None, code, verifier)).json()
    assert tokens["id_token"]
    public = {"client_id": client.client_id}
    renewed = await rp.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **public},
    )
    assert renewed.status_code == 200, renewed.text
    access = renewed.json()["access_token"]
    bearer = {"authorization": f"Bearer {access}"}
    assert (await rp.get("/oauth/userinfo", headers=bearer)).status_code == 200
    revoked = await rp.post(
        "/oauth/revoke", data={"token": access, "token_type_hint": "access_token", **public}
    )
    assert revoked.status_code == 200
    assert (await rp.get("/oauth/userinfo", headers=bearer)).status_code == 401
    stale = await rp.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": renewed.json()["refresh_token"],
              **public},
    )  # fmt: skip
    assert stale.json()["error"] == "invalid_grant"


async def _consent(gw: Harness, browser: httpx.AsyncClient, account_id: uuid.UUID) -> str:
    """The person logs in on the browser and consents to a new partner site: its client id."""
    await log_in(browser, account_id)
    client, _ = await register(gw, f"Site {uuid.uuid4().hex[:6]}", first_party=False)
    await _consented_code(gw, browser, client)
    return client.client_id


async def test_an_erased_account_leaves_no_consent_or_code_behind(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    account_id = await _person(gw, browser, "oidc-erased")
    await _consent(gw, browser, account_id)
    assert await count(gw, OidcConsent, col(OidcConsent.account_id) == account_id) == 1
    assert await count(gw, OidcCode, col(OidcCode.account_id) == account_id) == 1
    await gw.app.state.api.rights.delete_now(account_id, Operator("ops", "request"))
    assert await count(gw, OidcConsent, col(OidcConsent.account_id) == account_id) == 0
    assert await count(gw, OidcCode, col(OidcCode.account_id) == account_id) == 0


async def test_a_merge_carries_the_absorbed_accounts_consents_to_the_survivor(
    gw: Harness, browser: httpx.AsyncClient
) -> None:
    older, newer = await two_accounts_of_dave(gw, oa_first=True)
    survivor, absorbed = account_uuid(older["account"]["id"]), account_uuid(newer["account"]["id"])
    both = await _consent(gw, browser, survivor)
    async with browser_of(gw) as other:
        await log_in(other, absorbed)
        client = await gw.app.state.oidc.clients.get(both)
        await _consented_code(gw, other, client)
        only_absorbed = await _consent(gw, other, absorbed)
    await oa_login(gw, "dave", scope="snsapi_userinfo")  # the unionid proves one person
    consents = gw.app.state.oidc.consents
    assert sorted(c.client_id for c in await consents.of(survivor)) == sorted(
        [both, only_absorbed]
    )  # one live consent per site, none left on the merged account
    assert await consents.of(absorbed) == []
