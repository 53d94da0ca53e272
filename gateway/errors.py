"""Expected failures of domain services, each with a stable machine-readable code.

Services raise these; the API turns them into typed GraphQL results. Anything else that
escapes a service is unexpected and is masked at the edge.
"""

from __future__ import annotations


class GatewayError(Exception):
    def __init__(
        self, code: str, message: str, *, field: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after


def invalid_input(field: str, message: str) -> GatewayError:
    return GatewayError("INVALID_INPUT", message, field=field)
