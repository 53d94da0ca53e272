"""The sandbox's webhook receiver (issue 24): in sandbox mode a demo partner's events are
delivered to the gateway's own `/sandbox/webhooks`, which verifies each signature with the
`standardwebhooks` library and the partner's own (sealed) secret, and shows the last ones."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from gateway.partners.webhooks import WebhookSecrets, new_webhook_secret
from gateway.sandbox_routes import DEMO_PARTNER, DEMO_SECRET, KEPT, SERVE_ORIGIN_ENV
from tests.support.sandbox import Sandbox, sandbox

BODY = {"type": "account.merged", "timestamp": "2026-12-06T12:00:00Z", "data": {"accountId": "x"}}


async def demo_secret(gw: Sandbox) -> str:
    """The demo partner's signing secret, as the delivery worker opens it to sign."""
    svc = gw.app.state.services
    sealed = await svc.partners.webhook_secret(DEMO_PARTNER)
    assert sealed is not None
    return WebhookSecrets(svc.secrets.secret_key).open(DEMO_PARTNER, sealed)


def signed(secret: str, body: bytes) -> dict[str, str]:
    msg_id, now = str(uuid.uuid4()), datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        "content-type": "application/json",
    }


async def deliveries(gw: Sandbox) -> list[dict[str, Any]]:
    answer = await gw.client.get("/sandbox/webhooks")
    assert answer.status_code == 200
    found: list[dict[str, Any]] = answer.json()["deliveries"]
    return found


async def test_the_receiver_verifies_a_signature_and_refuses_a_wrong_one(workdir: Path) -> None:
    async with sandbox() as gw:
        assert await deliveries(gw) == []  # the first look points the demo webhook here
        view = await gw.app.state.services.partners.get(DEMO_PARTNER)
        assert view.webhook_url == f"http://gateway/sandbox/webhooks/{DEMO_PARTNER}"
        body = json.dumps(BODY).encode()
        good = signed(await demo_secret(gw), body)
        answer = await gw.client.post(view.webhook_url, content=body, headers=good)
        assert answer.status_code == 204

        forged = signed(new_webhook_secret(), body)  # someone else's secret
        refused = await gw.client.post(view.webhook_url, content=body, headers=forged)
        assert refused.status_code == 401
        assert "signature does not verify" in refused.json()["error"]
        tampered = await gw.client.post(view.webhook_url, content=body + b" ", headers=good)
        assert tampered.status_code == 401
        unsigned = await gw.client.post("/sandbox/webhooks", content=body)
        assert unsigned.status_code == 401

        shown = await deliveries(gw)
        assert [d["verified"] for d in shown] == [False, False, False, True]  # newest first
        assert (shown[-1]["webhookId"], shown[-1]["type"]) == (good["webhook-id"], "account.merged")
        assert shown[-1]["body"] == BODY
        assert shown[1]["webhookId"] == good["webhook-id"]  # the tampered copy of the same id


async def test_the_receiver_keeps_the_last_ones(workdir: Path) -> None:
    async with sandbox() as gw:
        secret = await _ready(gw)
        for n in range(KEPT + 3):
            body = json.dumps({**BODY, "data": {"n": n}}).encode()
            answer = await gw.client.post(
                "/sandbox/webhooks", content=body, headers=signed(secret, body)
            )
            assert answer.status_code == 204
        shown = await deliveries(gw)
        assert [d["body"]["data"]["n"] for d in shown] == list(range(KEPT + 2, 2, -1))


async def test_the_demo_partner_reads_its_feed_and_points_its_webhook_at_serve(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SERVE_ORIGIN_ENV, "http://127.0.0.1:8123")
    async with sandbox() as gw:
        view = await gw.app.state.services.partners.get(DEMO_PARTNER)
        assert view.webhook_url == f"http://127.0.0.1:8123/sandbox/webhooks/{DEMO_PARTNER}"
        assert view.apps == {"shop-mp", "club-mp", "news-oa", "web", "solo-mp"}
        answer = await gw.client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(DEMO_PARTNER, DEMO_SECRET),
        )
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        body = await gw.gql(
            "{ partner { ... on PartnerQuery { events { __typename } } } }", token=token
        )
        assert body["data"]["partner"]["events"]["__typename"] == "PartnerEventConnection"
    async with sandbox() as again:  # a restart keeps the partner and its secret
        assert (await again.app.state.services.partners.get(DEMO_PARTNER)).webhook_url


async def _ready(gw: Sandbox) -> str:
    await deliveries(gw)
    return await demo_secret(gw)
