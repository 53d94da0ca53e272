"""Avatar images: recognised by their bytes, decoded and re-encoded with Pillow, so that what
the gateway stores and serves is a plain picture with no metadata (EXIF GPS positions, camera
serials, embedded thumbnails) and nothing a decoder elsewhere could trip on.

Decoding is CPU work of tens of milliseconds: it runs in worker threads, at most
``max_concurrent`` at once, so a burst of uploads neither blocks the event loop nor takes
every core from logins.

Pillow is imported by the first upload, in its worker thread (~2.3 MiB of a serving process
that never sees an avatar, issue 29; the first upload's thread spends ~20 ms more on it).
"""

from __future__ import annotations

import asyncio
import io
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.errors import ImageTooLarge, InvalidImage

if TYPE_CHECKING:
    from PIL import Image

MAX_BYTES = 1024 * 1024
"""The largest upload taken (1 MiB): ``IMAGE_TOO_LARGE`` beyond."""
MAX_SIDE = 1024
"""Bigger pictures are scaled down to this many pixels on their longer side."""
MAX_PIXELS = 40_000_000
"""A header announcing more is refused before decoding (a small file can claim a huge image)."""

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"WEBP", 8, "WEBP"),
)
MEDIA_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


@dataclass(frozen=True)
class CleanImage:
    media_type: str
    data: bytes


def sniff(data: bytes) -> str | None:
    """The format the bytes are (JPEG, PNG, WebP), whatever the file name or header said."""
    for magic, offset, name in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            if name == "WEBP" and not data.startswith(b"RIFF"):
                continue
            return name
    return None


def reencode(data: bytes) -> CleanImage:
    """Decode, orient upright (then forget the orientation tag), scale down, encode afresh in
    the same format. ``InvalidImage`` for anything that does not decode as what it claims."""
    if len(data) > MAX_BYTES:
        raise ImageTooLarge()
    kind = sniff(data)
    if kind is None:
        raise InvalidImage()
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _reencode(data, kind)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning):
        raise InvalidImage() from None


def _reencode(data: bytes, kind: str) -> CleanImage:
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data), formats=[kind]) as source:
        width, height = source.size
        if width * height > MAX_PIXELS or not (width and height):
            raise ValueError("image too large in pixels")
        source.seek(0)  # animated WebP/PNG: the first frame
        picture = ImageOps.exif_transpose(source)
        picture.thumbnail((MAX_SIDE, MAX_SIDE))
        out = io.BytesIO()
        _save(picture, kind, out)
    return CleanImage(MEDIA_TYPES[kind], out.getvalue())


def _save(picture: Image.Image, kind: str, out: io.BytesIO) -> None:
    """Only pixels are written: the decoder's ``info`` (EXIF, ICC profile, text chunks, XMP)
    is dropped, and no encoder option brings any of it back."""
    if kind == "JPEG":
        keep = picture.convert("RGB")
    elif kind == "PNG":
        keep = picture if picture.mode in ("RGB", "RGBA", "L", "LA") else picture.convert("RGBA")
    else:
        keep = picture if picture.mode in ("RGB", "RGBA") else picture.convert("RGBA")
    keep.info = {}
    if kind == "JPEG":
        keep.save(out, "JPEG", quality=85, optimize=True)
    elif kind == "PNG":
        keep.save(out, "PNG", optimize=True)
    else:
        keep.save(out, "WEBP", quality=85)


def default_concurrency() -> int:
    """One fewer than the cores (the event loop keeps one), at least one."""
    return max(1, (os.cpu_count() or 2) - 1)


class ImageWorkers:
    """Re-encoding off the event loop, at most ``max_concurrent`` at once."""

    def __init__(self, max_concurrent: int | None = None) -> None:
        self._slots = asyncio.Semaphore(max_concurrent or default_concurrency())

    async def reencode(self, data: bytes) -> CleanImage:
        if len(data) > MAX_BYTES:  # refused before it waits for a thread
            raise ImageTooLarge()
        async with self._slots:
            return await asyncio.to_thread(reencode, data)
