"""The soak's judgement (bench/soak/checks.py, answers.py) on made-up outcomes: what counts as
a server error, when a temporary refusal is fine, how recovery is measured, audit counting.
The soak itself runs in CI as ``python -m bench soak --ci`` (.ci/run)."""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter

from bench.soak.answers import Outcome, account_uuid, classify
from bench.soak.checks import Fault, answer_problems, audit_problems, recovery_problems

KILL = Fault("kill", start=100.0, end=104.0, port=9001)
WECHAT = Fault("wechat", start=200.0, end=260.0)


def answer(data: object = None, errors: object = None) -> bytes:
    return json.dumps({"data": data, **({"errors": errors} if errors else {})}).encode()


def test_a_masked_internal_error_counts_like_a_5xx() -> None:
    masked = answer(None, [{"message": "Internal server error."}])
    assert classify("viewer", 200, masked).result == "masked"
    assert classify("viewer", 502, b"Bad Gateway").result == "5xx"
    typed = answer(None, [{"message": "later", "extensions": {"code": "UNAVAILABLE"}}])
    assert classify("viewer", 200, typed).result == "UNAVAILABLE"


def test_results_by_operation() -> None:
    login = {"loginByCode": {"__typename": "LoginSuccess", "accessToken": "a"}}
    assert classify("login", 200, answer(login)).result == "ok"
    refused = {"loginByCode": {"__typename": "UpstreamError", "code": "UPSTREAM_UNAVAILABLE"}}
    assert classify("login", 200, answer(refused)).result == "UPSTREAM_UNAVAILABLE"
    wrong = {
        "loginWithPassword": {
            "__typename": "InvalidCredentialsError",
            "code": "INVALID_CREDENTIALS",
        }
    }
    assert classify("loginWithPassword (wrong)", 200, answer(wrong)).result == "expected"
    assert classify("loginWithPassword", 200, answer(wrong)).result == "INVALID_CREDENTIALS"
    assert classify("viewer", 200, answer({"viewer": None})).result == "no viewer"
    busy = "Too many password checks at once; retry in a moment."
    shed = {"loginWithPassword": {"code": "TEMPORARILY_UNAVAILABLE", "message": busy}}
    assert classify("loginWithPassword", 200, answer(shed)).result == "shed"
    assert (classify("viewer", 0, b"").result, classify("viewer", -1, b"").result) == (
        "lost",
        "refused",
    )


def test_server_errors_always_fail_and_refusals_only_outside_faults() -> None:
    outcomes = [
        Outcome(10.0, "viewer", 0.01, "ok", 9000),
        Outcome(102.0, "viewer", 0.01, "lost", 9001),  # in flight on the killed process
        Outcome(150.0, "login", 0.01, "lost", 9000),  # not the killed one
        Outcome(210.0, "login", 2.0, "UPSTREAM_UNAVAILABLE", 9000),  # during WeChat's fault
        Outcome(274.0, "login", 2.0, "UPSTREAM_UNAVAILABLE", 9000),  # within 15 s after it
        Outcome(280.0, "login", 0.1, "UPSTREAM_UNAVAILABLE", 9000),  # 20 s after: too late
        Outcome(220.0, "refresh", 0.1, "REFRESH_TOKEN_REUSED", 9000),  # not a temporary one
        Outcome(230.0, "viewer", 0.1, "masked", 9000),  # never fine
        Outcome(500.0, "loginWithPassword", 0.1, "shed", 9000),  # load shedding: any time
    ]
    assert answer_problems(outcomes, [KILL, WECHAT]) == [
        "1 x login: UPSTREAM_UNAVAILABLE (outside any fault)",
        "1 x login: lost (outside any fault)",
        "1 x refresh: REFRESH_TOKEN_REUSED (not a typed temporary refusal)",
        "1 x viewer: masked (a server error)",
    ]


def test_recovery_is_measured_from_the_faults_end() -> None:
    quick = [Outcome(262.0, "login", 2.0, "UPSTREAM_UNAVAILABLE", 9000)]
    assert recovery_problems(quick, [WECHAT]) == []
    slow = [*quick, Outcome(280.0, "login", 0.1, "UPSTREAM_UNAVAILABLE", 9000)]
    assert recovery_problems(slow, [WECHAT]) == [
        "wechat: login still failing 20.0 s after the fault ended"
    ]


def test_every_success_needs_its_audit_row_with_the_platform() -> None:
    seen = Counter({"login": 3, "refresh|refresh_grace": 4})
    assert audit_problems(seen, {"login": 3, "refresh": 2, "refresh_grace": 2}, 0) == []
    assert audit_problems(seen, {"login": 2, "refresh": 4}, 1) == [
        "1 audit rows of the soak's kinds without the client's platform",
        "audit login: 2 rows for 3 successes the client saw",
    ]


def test_account_ids_decode_to_the_database_id() -> None:
    raw = uuid.uuid4()
    opaque = base64.b64encode(f"Account:{raw}".encode()).decode().rstrip("=")
    assert account_uuid(opaque) == str(raw)
