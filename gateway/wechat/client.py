"""The gateway's only door to WeChat: one shared ``httpx.AsyncClient`` (made by
``network.http_client``), typed answers.

Secrets and codes travel only in the query string sent to WeChat; nothing here logs a URL
(the ``httpx`` logger is held at WARNING by the app for the same reason).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from gateway.config import AppConfig
from gateway.limits import waiting_upstream
from gateway.metrics import WECHAT_CALLS, WECHAT_SECONDS
from gateway.wechat import errors
from gateway.wechat.errors import WeChatError

log = logging.getLogger(__name__)
T = TypeVar("T")
Parse = Callable[[httpx.Response], T]


@dataclass(frozen=True)
class CodeSession:
    """What a login code is worth: who the user is, and the key to their open data."""

    openid: str
    unionid: str | None
    session_key: str = field(repr=False)


@dataclass(frozen=True)
class OAuthGrant:
    """The answer of ``sns/oauth2/access_token`` (official accounts, websites, apps)."""

    openid: str
    unionid: str | None
    scope: str
    is_snapshot_user: bool
    access_token: str = field(repr=False)


@dataclass(frozen=True)
class Profile:
    nickname: str | None
    avatar_url: str | None
    unionid: str | None


@dataclass(frozen=True)
class AppAccessToken:
    expires_in: int
    value: str = field(repr=False)


@dataclass(frozen=True)
class PhoneNumber:
    country_code: str
    pure_number: str
    watermark_appid: str | None

    @property
    def e164(self) -> str:
        return f"+{self.country_code}{self.pure_number}"


@dataclass(frozen=True)
class ContentVerdict:
    """``msg_sec_check``'s judgement of a text: ``suggest`` is ``pass``, ``review`` or
    ``risky``; ``label`` WeChat's category (100: normal)."""

    suggest: str
    label: int | None

    @property
    def risky(self) -> bool:
        return self.suggest == "risky"


PROFILE_SCENE = 1
"""msg_sec_check's scene for profile text (1 资料; 2 评论, 3 论坛, 4 社交日志)."""
_SUGGESTIONS = frozenset({"pass", "review", "risky"})
_RISKY_ERRCODE = 87014  # version 1's answer for risky content; some deployments still send it


HttpClient = httpx.AsyncClient
"""The HTTP client type, for code that passes the shared client along without speaking HTTP."""


class WeChatClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        attempts: int = 3,
        backoff: float = 0.1,
        concurrency: int = 64,
    ) -> None:
        self._http = http
        self._attempts = attempts
        self._backoff = backoff
        # At most this many calls on the wire; the others wait before their timeout starts.
        # Unbounded, a burst put hundreds of requests in httpcore's pool at once, whose every
        # hand-out scans its connections and waiters (a login's CPU doubled).
        self._on_the_wire = asyncio.Semaphore(concurrency)

    async def code2session(self, app: AppConfig, code: str) -> CodeSession:
        body = await self._call(
            "GET",
            "/sns/jscode2session",
            params={
                "appid": app.appid,
                "secret": app.secret.get_secret_value(),
                "js_code": code,
                "grant_type": "authorization_code",
            },
        )
        return CodeSession(
            openid=_required_str(body, "openid"),
            unionid=_optional_str(body, "unionid"),
            session_key=_session_key(body),
        )

    async def oauth2_access_token(self, app: AppConfig, code: str) -> OAuthGrant:
        body = await self._call(
            "GET",
            "/sns/oauth2/access_token",
            params={
                "appid": app.appid,
                "secret": app.secret.get_secret_value(),
                "code": code,
                "grant_type": "authorization_code",
            },
        )
        return OAuthGrant(
            openid=_required_str(body, "openid"),
            unionid=_optional_str(body, "unionid"),
            scope=_optional_str(body, "scope") or "",
            is_snapshot_user=body.get("is_snapshotuser") == 1,
            access_token=_required_str(body, "access_token"),
        )

    async def userinfo(self, grant: OAuthGrant) -> Profile:
        body = await self._call(
            "GET",
            "/sns/userinfo",
            params={"access_token": grant.access_token, "openid": grant.openid, "lang": "zh_CN"},
        )
        return Profile(
            nickname=_optional_str(body, "nickname"),
            avatar_url=_optional_str(body, "headimgurl"),
            unionid=_optional_str(body, "unionid"),
        )

    async def stable_token(self, app: AppConfig, *, force_refresh: bool = False) -> AppAccessToken:
        body = await self._call(
            "POST",
            "/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": app.appid,
                "secret": app.secret.get_secret_value(),
                "force_refresh": force_refresh,
            },
        )
        expires_in = body.get("expires_in")
        if not isinstance(expires_in, int) or expires_in <= 0:
            raise errors.malformed("bad expires_in")
        return AppAccessToken(expires_in=expires_in, value=_required_str(body, "access_token"))

    async def check_session(self, access_token: str, openid: str, signature: str) -> bool:
        """True when WeChat still holds the signing session_key valid (87009: stale)."""
        try:
            await self._call(
                "GET",
                "/wxa/checksession",
                params={
                    "access_token": access_token,
                    "openid": openid,
                    "signature": signature,
                    "sig_method": "hmac_sha256",
                },
            )
        except WeChatError as exc:
            if exc.errcode == 87009:
                return False
            raise
        return True

    async def phone_number(self, access_token: str, code: str) -> PhoneNumber:
        body = await self._call(
            "POST",
            "/wxa/business/getuserphonenumber",
            params={"access_token": access_token},
            json={"code": code},
        )
        info = body.get("phone_info")
        if not isinstance(info, dict):
            raise errors.malformed("missing phone_info")
        watermark = info.get("watermark")
        appid = watermark.get("appid") if isinstance(watermark, dict) else None
        pure = _required_str(info, "purePhoneNumber")
        country = _required_str(info, "countryCode")
        if not (pure.isdigit() and country.isdigit()):
            raise errors.malformed("bad phone number")
        return PhoneNumber(country, pure, appid if isinstance(appid, str) else None)

    async def msg_sec_check(
        self, access_token: str, openid: str, content: str, scene: int = PROFILE_SCENE
    ) -> ContentVerdict:
        """WeChat's content check, version 2: ``openid`` is a user who opened the mini-program
        in the last two hours (the author of the text)."""
        try:
            body = await self._call(
                "POST",
                "/wxa/msg_sec_check",
                params={"access_token": access_token},
                json={"content": content, "version": 2, "scene": scene, "openid": openid},
            )
        except WeChatError as exc:
            if exc.errcode == _RISKY_ERRCODE:
                return ContentVerdict("risky", None)
            raise
        result = body.get("result")
        suggest = result.get("suggest") if isinstance(result, dict) else None
        if suggest not in _SUGGESTIONS:
            raise errors.malformed("bad msg_sec_check result")
        label = result.get("label") if isinstance(result, dict) else None
        return ContentVerdict(str(suggest), label if isinstance(label, int) else None)

    async def get_unlimited_wxacode(
        self,
        access_token: str,
        scene: str,
        page: str,
        *,
        check_path: bool = True,
        env_version: str = "release",
        width: int = 430,
    ) -> bytes:
        """``wxacode.getUnlimited``: the image (PNG or JPEG bytes) of a mini-program code that
        opens ``page`` with ``scene`` (at most 32 characters) in its query. WeChat answers the
        image itself, or JSON with an errcode (41030: the page is not published)."""
        return await self._retrying(
            _image,
            "POST",
            "/wxa/getwxacodeunlimit",
            params={"access_token": access_token},
            json={
                "scene": scene,
                "page": page,
                "check_path": check_path,
                "env_version": env_version,
                "width": width,
            },
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return await self._retrying(_parse, method, path, **kwargs)

    async def _retrying(self, parse: Parse[T], method: str, path: str, **kwargs: Any) -> T:
        """One logical call: bounded retries with jittered backoff, only for what may be retried."""
        for attempt in range(1, self._attempts + 1):
            try:
                return await self._once(parse, method, path, **kwargs)
            except WeChatError as exc:
                if not exc.retryable or attempt == self._attempts:
                    raise
                log.warning("wechat %s failed (%s), attempt %d", path, exc.code, attempt)
            await asyncio.sleep(self._backoff * 2 ** (attempt - 1) * (0.5 + random.random()))  # noqa: S311
        raise AssertionError("unreachable")

    async def _once(self, parse: Parse[T], method: str, path: str, **kwargs: Any) -> T:
        async with waiting_upstream(), self._on_the_wire:
            return await self._timed(parse, method, path, **kwargs)

    async def _timed(self, parse: Parse[T], method: str, path: str, **kwargs: Any) -> T:
        started = time.perf_counter()
        outcome = "0"
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            outcome = "timeout"
            raise errors.unavailable("timeout") from None
        except httpx.TransportError as exc:
            outcome = "network"
            raise errors.unavailable(type(exc).__name__) from None
        else:
            _unlink(response)
            if response.status_code >= 500 or response.status_code == 429:
                outcome = f"http_{response.status_code}"
                raise errors.unavailable(f"HTTP {response.status_code}")
            try:
                return parse(response)
            except WeChatError as exc:
                outcome = str(exc.errcode) if exc.errcode is not None else "malformed"
                raise
        finally:
            WECHAT_SECONDS.labels(path).observe(time.perf_counter() - started)
            WECHAT_CALLS.labels(path, outcome).inc()


_READ = httpx.ByteStream(b"")


def _unlink(response: httpx.Response) -> None:
    """httpx binds a response and its stream to each other (a reference cycle): with the body
    read and the stream closed, the stream goes, so the response, its request and its buffers
    are freed when the call returns rather than at the next full cyclic collection."""
    response.stream = _READ


def _parse(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise errors.malformed(f"HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise errors.malformed("not JSON") from None
    if not isinstance(body, dict):
        raise errors.malformed("not a JSON object")
    errcode = body.get("errcode", 0)
    if not isinstance(errcode, int):
        raise errors.malformed("errcode is not a number")
    if errcode != 0:
        raise errors.from_errcode(errcode)
    return body


_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


def _image(response: httpx.Response) -> bytes:
    """An image body, or WeChat's JSON failure (read as every other call's)."""
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if response.status_code == 200 and media.startswith("image/"):
        if not response.content.startswith(_IMAGE_MAGIC):
            raise errors.malformed("not a PNG or JPEG image")
        return response.content
    _parse(response)  # raises for an errcode
    raise errors.malformed("no image")


def _required_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > 512:
        raise errors.malformed(f"missing {name}")
    return value


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 512:
        raise errors.malformed(f"bad {name}")
    return value


def _session_key(body: dict[str, Any]) -> str:
    value = _required_str(body, "session_key")
    try:
        if len(base64.b64decode(value, validate=True)) != 16:
            raise errors.malformed("session_key is not 16 bytes")
    except ValueError:
        raise errors.malformed("session_key is not base64") from None
    return value
