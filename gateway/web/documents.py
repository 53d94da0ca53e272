"""The GraphQL documents the hosted page's own script sends (the scan tab): listed, so a
gateway with ``[api] trusted_documents_only`` runs them (the composition root adds them to
the trusted documents)."""

from __future__ import annotations

START = (
    "mutation HostedStartWebLogin($app: String!) { startWebLogin(input: {app: $app}) { "
    "__typename ... on WebLoginStarted { ticket qrImage scene } ... on Error { code } } }"
)
STATUS = (
    "query HostedWebLoginStatus($ticket: String!) { "
    "webLoginStatus(ticket: $ticket, waitSeconds: 20) { "
    "__typename ... on WebLoginState { status } ... on Error { code } } }"
)
PAGE_DOCUMENTS = (START, STATUS)
"""The page's GraphQL documents: trusted (``[api] trusted_documents_only`` runs them)."""
