"""GraphQL over HTTP on Starlette: the strawberry view, tuned to the GraphQL-over-HTTP spec.

- GET carries queries only: a mutation over GET is 405, with ``Allow: POST``.
- ``application/graphql-response+json`` is answered when the client asks for it, and then a
  request error (parse, validation) is a 400 with no ``data`` entry.
- The playground (GraphiQL, self-hosted: gateway.playground) has a sandbox panel in sandbox mode.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError

from gateway import playground
from gateway.api.context import ApiServices, Context, make_loaders
from gateway.sessions.tokens import TokenRejected

GRAPHQL_RESPONSE = "application/graphql-response+json"


def _is_request_error(result: ExecutionResult) -> bool:
    """Parse, validation and variable-coercion failures: no data, and no error has a path."""
    if isinstance(result, PreExecutionError):
        return True
    return (
        result.data is None
        and bool(result.errors)
        and all(e.path is None for e in result.errors or ())
    )


class MethodNotAllowed(Exception):
    pass


_TOKEN_MESSAGES = {
    "TOKEN_EXPIRED": "The access token has expired: refresh it (refreshToken) and retry.",
    "INVALID_TOKEN": "The access token is not valid (revoked, or not ours): log in again.",
}


def _unauthorized(rejected: TokenRejected, accept: str) -> Response:
    """RFC 6750 §3: 401 with ``WWW-Authenticate: Bearer error="invalid_token"``, and a GraphQL
    error body whose ``extensions.code`` tells an expired token from an invalid one."""
    message = _TOKEN_MESSAGES[rejected.code]
    body = {"errors": [{"message": message, "extensions": {"code": rejected.code}}]}
    challenge = f'Bearer error="invalid_token", error_description="{message}"'
    return JSONResponse(
        body,
        status_code=401,
        headers={"WWW-Authenticate": challenge},
        media_type=GRAPHQL_RESPONSE if GRAPHQL_RESPONSE in accept else "application/json",
    )


class GatewayGraphQL(GraphQL[Context, None]):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except MethodNotAllowed:
            response = PlainTextResponse(
                "Mutations are not allowed over GET; use POST.",
                status_code=405,
                headers={"Allow": "POST"},
            )
            await response(scope, receive, send)
        except TokenRejected as rejected:
            accept = Request(scope).headers.get("accept", "")
            await _unauthorized(rejected, accept)(scope, receive, send)

    async def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        """Authenticate once per request, before anything runs (TokenRejected: a 401)."""
        context: Context = kwargs["context"]
        await context.authenticate()
        return await super().execute_operation(*args, **kwargs)

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        services: ApiServices = request.app.state.api
        return Context(request=request, services=services, loaders=make_loaders(services.accounts))

    async def get_sub_response(self, request: Request) -> Response:  # type: ignore[override]
        sub = await super().get_sub_response(request)
        if GRAPHQL_RESPONSE in request.headers.get("accept", ""):
            sub.media_type = GRAPHQL_RESPONSE
        request.state.sub_response = sub
        return sub

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(*args, **kwargs)
        except Exception as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                raise MethodNotAllowed from None
            raise

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        body = process_result(result)
        sub: Response = request.state.sub_response
        if _is_request_error(result) and sub.media_type == GRAPHQL_RESPONSE:
            sub.status_code = 400
            body.pop("data", None)
        return body

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = Response(
            self.encode_json(response_data),
            status_code=sub_response.status_code or 200,
            media_type=sub_response.media_type or "application/json",
        )
        response.headers.raw.extend(
            (k, v) for k, v in sub_response.headers.raw if k.lower() != b"content-type"
        )
        return response

    async def render_graphql_ide(self, request: Request) -> Response:
        """The self-hosted playground (gateway.playground), with its panel in sandbox mode."""
        config = request.app.state.api.config
        demo_apps = (
            [playground.DemoApp(a.key, a.kind.value, a.name) for a in config.apps]
            if config.sandbox
            else None
        )
        return playground.page(request, demo_apps)
