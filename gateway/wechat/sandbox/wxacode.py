"""The emulated ``/wxa/getwxacodeunlimit``: a mini-program code as a real PNG.

Not a real WeChat code (no QR library is locked, and a phone could not open the sandbox
anyway): a deterministic picture that looks the part and can be read back. A 21 x 21 grid of
modules drawn from SHA-256 of (appid, page, scene), with the three corner squares codes have,
and under it the scene in plain text for a person; the PNG's ``scene`` and ``page`` text
chunks carry them for a machine (``PIL.Image.open(...).text["scene"]``). Play the scan with
the gateway's ``/sandbox/scan?scene=...``.

Pillow is imported by the first code drawn, not with the sandbox: a sandbox gateway that
draws none does not hold it (~2.3 MiB).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from typing import Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .state import SandboxState, WeChatError
from .wechat_api import error_body

PATH: Final = "/wxa/getwxacodeunlimit"
MODULES: Final = 21
SCENE: Final = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$")
"""What WeChat accepts as a scene: 32 visible characters of this set (40169 otherwise)."""
PAGE: Final = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


def _finder(cell: int, x: int, y: int) -> bool:
    """Inside one of the three 7 x 7 corner squares, which of its modules are dark."""
    for ox, oy in ((0, 0), (MODULES - 7, 0), (0, MODULES - 7)):
        dx, dy = x - ox, y - oy
        if 0 <= dx < 7 and 0 <= dy < 7:
            ring = max(abs(dx - 3), abs(dy - 3))
            return ring != 2
    return bool(cell)


def _bits(appid: str, page: str, scene: str) -> list[int]:
    seed = f"{appid}\0{page}\0{scene}".encode()
    stream = b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range(2))
    return [(stream[i // 8] >> (i % 8)) & 1 for i in range(MODULES * MODULES)]


def render(appid: str, page: str, scene: str, width: int = 430) -> bytes:
    """The PNG of the code: the same bytes for the same arguments."""
    from PIL import Image, ImageDraw, ImageFont
    from PIL.PngImagePlugin import PngInfo

    module = max(4, width // (MODULES + 4))
    side = module * (MODULES + 4)
    image = Image.new("L", (side, side + 3 * module), 255)
    draw = ImageDraw.Draw(image)
    bits = _bits(appid, page, scene)
    for y in range(MODULES):
        for x in range(MODULES):
            if _finder(bits[y * MODULES + x], x, y):
                left, top = (x + 2) * module, (y + 2) * module
                draw.rectangle((left, top, left + module - 1, top + module - 1), fill=0)
    font = ImageFont.load_default(size=max(10, module * 2))
    draw.text((side // 2, side + module), scene, fill=0, font=font, anchor="mt")
    info = PngInfo()
    info.add_text("scene", scene)
    info.add_text("page", page)
    out = io.BytesIO()
    image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


async def _answer(request: Request, state: SandboxState) -> bytes:
    """41001/40001/42001 for the token, 40013 for an app that is not a mini-program, 47001
    for a body that is not JSON, 40169 for a bad scene, 41030 for a bad page."""
    token = state.resolve_app_token(request.query_params.get("access_token", ""))
    app = state.apps[token.appid]
    if app.kind != "miniprogram":
        raise WeChatError(40013)
    try:
        body = await request.json()
    except ValueError:
        raise WeChatError(47001) from None
    if not isinstance(body, dict):
        raise WeChatError(47001)
    scene, page, width = body.get("scene"), body.get("page", ""), body.get("width", 430)
    if not isinstance(scene, str) or not SCENE.match(scene):
        raise WeChatError(40169)
    if not isinstance(page, str) or (page and not PAGE.match(page)):
        raise WeChatError(41030)
    if isinstance(width, bool) or not isinstance(width, int) or not 280 <= width <= 1280:
        width = 430
    return render(app.appid, page, scene, width)


def wxacode_route(state: SandboxState) -> Route:
    async def endpoint(request: Request) -> Response:
        state.calls[PATH] += 1
        if state.latency > 0:
            await asyncio.sleep(state.latency)
        try:
            png = await _answer(request, state)
        except WeChatError as exc:
            return JSONResponse(error_body(exc.errcode))
        return Response(png, media_type="image/png")

    return Route(PATH, endpoint, methods=["POST"])
