"""GraphQL over HTTP on Starlette: the strawberry view, tuned to the GraphQL-over-HTTP spec.

- GET carries queries only: a mutation over GET is 405, with ``Allow: POST``.
- ``application/graphql-response+json`` is answered when the client asks for it, and then a
  request error (parse, validation) is a 400 with no ``data`` entry.
- The playground (GraphiQL, self-hosted: gateway.playground) has a sandbox panel in sandbox mode.
- A malformed request (a body that is not a JSON object, bytes that are not UTF-8, JSON nested
  deeper than ``MAX_JSON_DEPTH``) is a 400 with a JSON GraphQL error body and one log line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.types import ExecutionResult

from gateway import i18n, playground
from gateway.api.context import (
    GRAPHQL_RESPONSE,
    ApiServices,
    Context,
    Loaders,
    new_sub_response,
)
from gateway.api.errors import DOMAIN
from gateway.api.prepared import PreparedDocuments
from gateway.api.trusted import NOT_FOUND, DocumentRefused, TrustedDocuments
from gateway.compat.strawberry import (
    CannotGetOperationTypeError,
    GraphQLView,
    HTTPException,
    OperationNotAllowed,
    PreExecutionError,
    execute_over_post,
)
from gateway.errors import N_
from gateway.limits import InProgressLimit
from gateway.sessions.tokens import TokenRejected

MAX_JSON_DEPTH = 64
"""Arrays and objects inside each other in a request (variables included): real clients send a
handful; deeper is refused before anything recursive (graphql-core's coercion) sees it."""
log = logging.getLogger("gateway.api")


def _is_request_error(result: ExecutionResult) -> bool:
    """Parse, validation and variable-coercion failures: no data, and no error has a path."""
    if isinstance(result, PreExecutionError):
        return True
    return (
        result.data is None
        and bool(result.errors)
        and all(e.path is None for e in result.errors or ())
    )


_TOKEN_MESSAGES = {
    "TOKEN_EXPIRED": N_("The access token has expired: refresh it (refreshToken) and retry."),
    "INVALID_TOKEN": N_("The access token is not valid (revoked, or not ours): log in again."),
}


def _unauthorized(rejected: TokenRejected, request: Request) -> Response:
    """RFC 6750 §3: 401 with ``WWW-Authenticate: Bearer error="invalid_token"``, and a GraphQL
    error body whose ``extensions.code`` tells an expired token from an invalid one. The body's
    message is in the request's language; the header's ``error_description`` stays English
    (RFC 6750 allows only printable ASCII there, and it is for developers)."""
    message = _TOKEN_MESSAGES[rejected.code]
    default = request.app.state.api.config.i18n.default_locale
    locale = i18n.negotiate(request.headers.get("accept-language"), default)
    shown = i18n.gettext(locale, DOMAIN, message)
    body = {"errors": [{"message": shown, "extensions": {"code": rejected.code}}]}
    challenge = f'Bearer error="invalid_token", error_description="{message}"'
    return JSONResponse(
        body,
        status_code=401,
        headers={"WWW-Authenticate": challenge},
        media_type=GRAPHQL_RESPONSE
        if GRAPHQL_RESPONSE in request.headers.get("accept", "")
        else "application/json",
    )


def decode_json(data: str | bytes) -> Any:
    """Strict JSON: UTF-8 only, nesting bounded; anything else is a 400."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise HTTPException(400, "Unable to parse request body as UTF-8 JSON.") from None
    # nesting n deep takes 2n brackets: a shorter text cannot be too deep, and needs no walk
    if len(text) > 2 * MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise HTTPException(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
    return value


def _depth(value: Any) -> int:
    """How deep arrays and objects nest in ``value``, without recursion."""
    deepest, level = 0, [(value, 1)]
    while level:
        item, depth = level.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            level.extend((child, depth + 1) for child in children)
    return deepest


_ACCEPTABLE = {"*/*", "application/*", "application/json", GRAPHQL_RESPONSE, "text/html"}


def _acceptable(accept: str | None) -> bool:
    """No Accept header, or one naming a JSON answer (or the playground's HTML)."""
    if not accept:
        return True
    return any(part.split(";")[0].strip().lower() in _ACCEPTABLE for part in accept.split(","))


def _bad_request(scope: Scope, reason: str, status: int) -> Response:
    """A request error as GraphQL over HTTP shapes it: JSON, ``errors`` and no ``data``."""
    log.info("refused GraphQL request: %s (%d)", reason, status)
    accept = dict(scope["headers"]).get(b"accept", b"").decode("latin-1")
    media = GRAPHQL_RESPONSE if GRAPHQL_RESPONSE in accept else "application/json"
    return JSONResponse({"errors": [{"message": reason}]}, status_code=status, media_type=media)


def _plain_json_post(scope: Scope) -> bool:
    """A POST of ``application/json`` asking for a JSON answer (not a stream): almost every
    request, and the one shape the lean path serves."""
    if scope["method"] != "POST":
        return False
    content_type = accept = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"accept":
            accept = value
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" and b"multipart" not in accept and b"event" not in accept


def _single_operation(data: Any) -> GraphQLRequestData | None:
    """The request's operation when it is well formed; ``None`` sends it down strawberry's
    own path, which answers every malformed shape (batches, a missing query, wrong types)."""
    if not isinstance(data, dict):
        return None
    query, variables = data.get("query"), data.get("variables")
    name, extensions = data.get("operationName"), data.get("extensions")
    if (
        not isinstance(query, str)
        or not isinstance(variables, dict | None)
        or not isinstance(name, str | None)
        or not isinstance(extensions, dict | None)
    ):
        return None
    return GraphQLRequestData(query, variables, name, extensions, "http")


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _set_by_resolvers(sub: Response) -> list[tuple[bytes, bytes]]:
    """The sub-response's headers (cookies, ``Retry-After``...), its media type aside."""
    return [(k, v) for k, v in sub.headers.raw if k.lower() != b"content-type"]


def _shaped(result: ExecutionResult, graphql_response: bool) -> tuple[GraphQLHTTPResponse, int]:
    """The answer's body and status: with ``application/graphql-response+json`` asked for, a
    request error is a 400 with no ``data`` entry (the GraphQL-over-HTTP spec)."""
    body = process_result(result)
    if graphql_response and _is_request_error(result):
        body.pop("data", None)
        return body, 400
    return body, 200


async def _send(
    send: Send, body: str | bytes, sub: Response | None, media: str, status: int
) -> None:
    """The answer, with what resolvers set on the sub-response (status, cookies, headers),
    when they made one."""
    data = body.encode() if isinstance(body, str) else body
    headers = [(b"content-type", media.encode()), (b"content-length", str(len(data)).encode())]
    if sub is not None:
        headers += _set_by_resolvers(sub)
        status = sub.status_code or status
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands over the body already read, once; after it, the connection's own
    (which then waits for the client to disconnect, as a streamed answer expects)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def _refusal(scope: Scope, refused: DocumentRefused) -> Response:
    """Apollo's answer to an unknown hash (200, so its clients retry with the text); a 400 for
    a document a trusted-only gateway will not run."""
    log.info("refused GraphQL document: %s", refused.code)
    body = {"errors": [{"message": refused.message, "extensions": {"code": refused.code}}]}
    return JSONResponse(body, status_code=200 if refused.code == NOT_FOUND else 400)


class GatewayGraphQL(GraphQLView):
    def __init__(
        self,
        *args: Any,
        in_progress: InProgressLimit,
        trusted: TrustedDocuments | None = None,
        prepared: bool = True,
        **kwargs: Any,
    ) -> None:
        """``prepared``: trusted documents, and any other once validated, take their fast
        path (gateway.api.prepared); ``[performance] fast_paths = false`` turns it off."""
        super().__init__(*args, **kwargs)
        self._in_progress = in_progress
        self._trusted = trusted or TrustedDocuments({}, only=False)
        self.prepared = PreparedDocuments(
            self.schema, self._trusted.texts() if prepared else [], any_text=prepared
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The body is read whole first, then the request waits for a slot (gateway.limits)."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        body = await _read_body(receive)
        async with self._in_progress.slot():
            await self._answer(scope, body, _replaying(body, receive), send)

    async def _answer(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        try:
            if _plain_json_post(scope):
                await self._lean(scope, body, receive, send)
            else:
                await super().__call__(scope, receive, send)
        except OperationNotAllowed:
            response = PlainTextResponse(
                "Mutations are not allowed over GET; use POST.",
                status_code=405,
                headers={"Allow": "POST"},
            )
            await response(scope, receive, send)
        except TokenRejected as rejected:
            await _unauthorized(rejected, Request(scope))(scope, receive, send)
        except DocumentRefused as refused:
            await _refusal(scope, refused)(scope, receive, send)

    async def _lean(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        """A plain JSON POST, answered without strawberry's general request handling (content
        negotiation by ``email.message``, stream and upload detection, four layers of hooks):
        the same steps, the same hooks of ours, a third of the work. Anything unusual in the
        body goes down the full path, which reads the body again from the replay."""
        request = Request(scope, receive)
        accept = request.headers.get("accept")
        if not _acceptable(accept):
            await _bad_request(scope, "Acceptable: application/json.", 406)(scope, receive, send)
            return
        try:
            data = decode_json(body)
            if isinstance(data, dict):
                self._trusted.resolve(data)  # a hash sent for the text (gateway.api.trusted)
            operation = _single_operation(data)
        except HTTPException as exc:
            await _bad_request(scope, exc.reason, exc.status_code)(scope, receive, send)
            return
        if operation is None:
            await super().__call__(scope, receive, send)
            return
        context = self._context(request, None)  # a sub-response only if a resolver asks
        await context.authenticate()
        self._trusted.admit(operation.query, frontend=not context.is_partner)
        prepared = self.prepared.find(operation)
        try:
            if prepared is not None:
                result = await self.prepared.execute(prepared, operation, context)
            else:
                result = await execute_over_post(self.schema, operation, context)
        except CannotGetOperationTypeError as exc:  # strawberry's view answers it so, too
            await _bad_request(scope, exc.as_http_error_reason(), 400)(scope, receive, send)
            return
        if context.token_rejection is not None:
            raise context.token_rejection
        graphql_response = accept is not None and GRAPHQL_RESPONSE in accept
        answer, status = _shaped(result, graphql_response)
        media = GRAPHQL_RESPONSE if graphql_response else "application/json"
        await _send(send, self.encode_json(answer), context.sub, media, status)

    async def before_operation(self, context: Context) -> None:
        """Authenticate once per request, before anything runs. Off the lean path (GET,
        batches, other bodies) a trusted-only gateway takes no document from a frontend."""
        await context.authenticate()
        self._trusted.admit(None, frontend=not context.is_partner)

    def after_operation(self, context: Context) -> None:
        """When a field needed the caller and the token was not live, the answer is a 401."""
        if context.token_rejection is not None:
            raise context.token_rejection

    def refuse(self, request: Request) -> Response | None:
        if not _acceptable(request.headers.get("accept")):
            return _bad_request(request.scope, "Acceptable: application/json.", 406)
        return None

    def request_error(self, request: Request, reason: str, status: int) -> Response:
        return _bad_request(request.scope, reason, status)

    def decode_body(self, data: str | bytes) -> Any:
        """The POST body: a JSON object (or a list, which is refused as batching)."""
        value = decode_json(data)
        if not isinstance(value, dict | list):
            raise HTTPException(400, "The request body must be a JSON object.")
        return value

    def decode_query(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET: ``variables`` and ``extensions`` are JSON, decoded as strictly as a body."""
        for name in ("variables", "extensions"):
            if params.get(name):
                params[name] = decode_json(params[name])
        return params

    async def get_context(self, request: Request, response: Response) -> Context:  # type: ignore[override]
        return self._context(request, response)

    def _context(self, request: Request, sub: Response | None) -> Context:
        services: ApiServices = request.app.state.api
        return Context(request, services, Loaders(services.accounts), sub)

    async def get_sub_response(self, request: Request) -> Response:  # type: ignore[override]
        sub = new_sub_response(request)
        request.state.sub_response = sub
        return sub

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        sub: Response = request.state.sub_response
        body, status = _shaped(result, sub.media_type == GRAPHQL_RESPONSE)
        if status != 200:
            sub.status_code = status
        return body

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = Response(
            self.encode_json(response_data),
            status_code=sub_response.status_code or 200,
            media_type=sub_response.media_type or "application/json",
        )
        response.headers.raw.extend(_set_by_resolvers(sub_response))
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
