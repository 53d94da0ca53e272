"""The avatar endpoints, plain HTTP beside GraphQL: ``wx.uploadFile`` sends a file as
multipart/form-data, which GraphQL over JSON cannot carry.

- ``POST /avatars`` (``Authorization: Bearer <accessToken>``, one file part of any name; the
  SDK names it ``file``): ``200 {"avatar": "<id>", "url": "https://…/avatars/<id>.jpg"}``;
  then ``updateProfile(input: {avatar: "<id>"})`` makes it the account's avatar. Failures are
  ``{"error": {"code", "message"}}`` with the ``ErrorCode`` of GraphQL: ``IMAGE_TOO_LARGE``
  (413: the file, or the whole body, over 1 MiB), ``INVALID_IMAGE`` (422: not a decodable
  JPEG, PNG or WebP), ``INVALID_INPUT`` (400: not multipart, no file), ``NOT_LOGGED_IN``
  (401), and 401 ``invalid_token`` as on ``/graphql`` for a token that is not live.
- ``GET /avatars/<id>.<ext>``: the picture, ``Cache-Control: public, max-age=31536000,
  immutable`` (the bytes under an id never change); 404 once deleted.
"""

from __future__ import annotations

import functools

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from gateway import i18n
from gateway.api.context import ApiServices
from gateway.api.errors import DOMAIN, message
from gateway.errors import N_, GatewayError, ImageTooLarge, InvalidImage, InvalidInput, NotLoggedIn
from gateway.profiles.images import MAX_BYTES
from gateway.sessions.tokens import TokenRejected

BODY_LIMIT = MAX_BYTES + 64 * 1024
"""The largest upload body: the file's 1 MiB and room for the multipart framing."""
IMMUTABLE = "public, max-age=31536000, immutable"
_RENEW = N_("Refresh the token (TOKEN_EXPIRED), or log in again (INVALID_TOKEN).")
_STATUS = {ImageTooLarge: 413, InvalidImage: 422, NotLoggedIn: 401}


def refusal(error: GatewayError, locale: str = i18n.DEFAULT_LOCALE) -> JSONResponse:
    """A failure as JSON with its stable code (the GraphQL ``ErrorCode``), its message in
    ``locale``."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, NotLoggedIn) else None
    body = {"error": {"code": error.code, "message": message(error, locale)}}
    return JSONResponse(body, status_code=_STATUS.get(type(error), 400), headers=headers)


@functools.cache
def too_large() -> JSONResponse:
    """What the body-size limit answers for ``/avatars`` (``gateway.limits``), before any
    request is read: in ``gateway.i18n.DEFAULT_LOCALE``. Made by the first refusal, so that
    a process that never refuses an upload never compiles a catalogue for it (issue 29)."""
    return refusal(ImageTooLarge())


def _locale(request: Request) -> str:
    default = request.app.state.api.config.i18n.default_locale
    return i18n.negotiate(request.headers.get("accept-language"), default)


def _origin(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _unauthorized(rejected: TokenRejected, locale: str) -> Response:
    """As ``/graphql`` answers a token that is not live (RFC 6750), so a client renews the
    token the same way for both: the challenge, and the code in ``errors[0].extensions``."""
    message = i18n.gettext(locale, DOMAIN, _RENEW)
    challenge = f'Bearer error="invalid_token", error_description="{rejected.code}"'
    body = {
        "error": {"code": rejected.code, "message": message},
        "errors": [{"message": message, "extensions": {"code": rejected.code}}],
    }
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": challenge})


async def upload_avatar(request: Request) -> Response:
    api: ApiServices = request.app.state.api
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return refusal(NotLoggedIn(), _locale(request))
    try:
        viewer = await api.sessions.authenticate(token.strip())
    except TokenRejected as rejected:
        return _unauthorized(rejected, _locale(request))
    try:
        data = await _the_file(request)
        uploaded = await api.profiles.upload_avatar(viewer, data, _origin(request))
    except (InvalidInput, ImageTooLarge, InvalidImage) as error:
        return refusal(error, _locale(request))
    return JSONResponse({"avatar": uploaded.id, "url": uploaded.url})


async def _the_file(request: Request) -> bytes:
    """The bytes of the form's one file, read no further than one byte past the limit."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInput("file", "Send the picture as multipart/form-data (wx.uploadFile).")
    try:
        async with request.form(max_files=1, max_fields=16) as form:
            upload = next((v for _, v in form.multi_items() if isinstance(v, UploadFile)), None)
            if upload is None:
                raise InvalidInput("file", "The form holds no file.")
            data = await upload.read(MAX_BYTES + 1)
    except MultiPartException as exc:
        raise InvalidInput("file", "Unreadable form: %(reason)s", reason=exc.message) from None
    if len(data) > MAX_BYTES:
        raise ImageTooLarge()
    return data


async def serve_avatar(request: Request) -> Response:
    api: ApiServices = request.app.state.api
    found = await api.profiles.avatar(request.path_params["name"])
    if found is None:
        return PlainTextResponse("Not Found", 404, headers={"cache-control": "no-store"})
    headers = {
        "cache-control": IMMUTABLE,
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'",
    }
    return Response(found.data, media_type=found.media_type, headers=headers)
