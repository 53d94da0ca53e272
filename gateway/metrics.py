"""Prometheus metrics: what an operator watches (logins, WeChat health, latencies).

Process-global, as Prometheus clients are. With several workers, set
``PROMETHEUS_MULTIPROC_DIR`` (an empty directory) so ``/metrics`` aggregates every worker.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

LOGINS = Counter("gateway_logins_total", "Login attempts by door and result", ["door", "result"])
WECHAT_CALLS = Counter(
    "gateway_wechat_calls_total",
    "WeChat API calls by endpoint and errcode",
    ["endpoint", "errcode"],
)
WECHAT_SECONDS = Histogram(
    "gateway_wechat_call_seconds",
    "WeChat API call latency",
    ["endpoint"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REFRESHES = Counter("gateway_token_refreshes_total", "Refresh token uses by result", ["result"])
HASHING_REFUSED = Counter(
    "gateway_password_hashing_refused_total", "Password checks refused: hashing at capacity"
)
MERGES = Counter("gateway_merges_total", "Accounts merged into another")
TOKEN_CHECKS = Counter(
    "gateway_token_checks_total",
    "Access token checks by where they were answered (cache: no database read)",
    ["source"],
)
REQUESTS_WAITING = Gauge(
    "gateway_requests_waiting",
    "GraphQL requests waiting for a slot (GATEWAY_MAX_IN_PROGRESS requests run at once)",
    multiprocess_mode="livesum",
)
SMS_CODES = Counter(
    "gateway_sms_codes_total",
    "SMS codes: sent, or refused by reason (phone, address, country, budget, captcha, provider)",
    ["result"],
)
THROTTLED = Counter("gateway_throttled_total", "Password attempts refused by the throttle")
HTTP_SECONDS = Histogram(
    "gateway_http_request_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# account events' webhooks (gateway.events): what is waiting, what arrived, what gave up
EVENTS_PENDING = Gauge(
    "gateway_events_pending",
    "Webhook deliveries waiting to be sent or retried (all processes share one queue)",
    multiprocess_mode="livemax",
)
EVENTS_DELIVERED = Counter("gateway_events_delivered_total", "Webhook deliveries a partner took")
EVENTS_FAILED = Counter(
    "gateway_events_failed_total", "Webhook deliveries given up after their last retry"
)
EVENT_ATTEMPTS = Counter(
    "gateway_event_attempts_total",
    "Webhook attempts by result (delivered, retry, failed)",
    ["result"],
)
EVENT_DELIVERY_SECONDS = Histogram(
    "gateway_event_delivery_seconds",
    "From an event's change to its webhook's acceptance by the partner",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120, 600, 3600),
)


async def metrics(_: Request) -> Response:
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
