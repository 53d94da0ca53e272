"""The avatar endpoint over HTTP, as wx.uploadFile uses it: multipart with a bearer token;
pictures recognised by their bytes, re-encoded without metadata, served at a URL that never
changes its bytes (cached a year), chosen by updateProfile, and gone with the account."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image, ImageCms

from gateway.accounts.tables import Avatar
from tests.support.accounts import count
from tests.support.harness import Configure, Harness, running

UPDATE = """
mutation($avatar: String) {
  updateProfile(input: {avatar: $avatar}) {
    __typename
    ... on UpdateProfileSuccess { account { avatarUrl } }
    ... on Error { code }
    ... on InvalidInputError { field }
  }
}
"""
DELETE = "mutation { deleteAccount { __typename } }"
MIB = 1024 * 1024


def picture(fmt: str, size: tuple[int, int] = (300, 200), **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (220, 30, 60)).save(out, fmt, **save)
    return out.getvalue()


def with_gps(fmt: str) -> bytes:
    """A phone photo: EXIF with a GPS position, a camera maker and a rotation tag, and a
    colour profile (which Pillow would copy into a re-encoded PNG unless told not to)."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0112] = 6  # rotated: stored sideways
    exif[0x8825] = {1: "N", 2: (31.0, 14.0, 0.0), 3: "E", 4: (121.0, 28.0, 0.0)}
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return picture(fmt, exif=exif.tobytes(), icc_profile=icc)


async def upload(
    gw: Harness,
    token: str | None,
    data: bytes,
    *,
    filename: str = "tmp.jpg",
    content_type: str = "image/jpeg",
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    files = {"file": (filename, data, content_type)}  # the SDK's field name; any is taken
    return await gw.client.post("/avatars", files=files, headers=headers)


async def choose(gw: Harness, token: str, avatar: str) -> Any:
    body = await gw.gql(UPDATE, {"avatar": avatar}, token=token)
    assert "errors" not in body, body
    return body["data"]["updateProfile"]


async def fetch(gw: Harness, url: str) -> httpx.Response:
    return await gw.client.get(url.removeprefix("http://gateway"))


@pytest.mark.parametrize(
    ("fmt", "media_type"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
async def test_an_upload_is_reencoded_without_metadata_and_cached_for_a_year(
    gw: Harness, fmt: str, media_type: str
) -> None:
    token = (await gw.login("shop-mp", "ann"))["accessToken"]
    sent = with_gps(fmt)
    assert b"PhoneMaker" in sent

    answer = await upload(gw, token, sent, filename="whatever.bin", content_type="text/plain")

    assert answer.status_code == 200, answer.text
    uploaded = answer.json()
    assert uploaded["url"].startswith("http://gateway/avatars/")
    served = await fetch(gw, uploaded["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == media_type
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert b"PhoneMaker" not in served.content
    image = Image.open(io.BytesIO(served.content))
    assert image.format == fmt
    assert image.size == (200, 300)  # turned upright, then the rotation tag dropped
    assert dict(image.getexif()) == {}
    assert "icc_profile" not in image.info

    chosen = await choose(gw, token, uploaded["avatar"])
    assert chosen["account"]["avatarUrl"] == uploaded["url"]
    again = await fetch(gw, uploaded["url"])
    assert again.content == served.content  # the bytes under a URL never change


async def test_over_one_mebibyte_is_image_too_large(gw: Harness) -> None:
    token = (await gw.login("shop-mp", "bo"))["accessToken"]
    jpeg = picture("JPEG")
    padded = jpeg + b"\0" * (MIB + 1 - len(jpeg))  # a decodable JPEG with trailing bytes
    refused = await upload(gw, token, padded)
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "IMAGE_TOO_LARGE"

    huge = await upload(gw, token, b"\xff\xd8\xff" + b"\0" * (3 * MIB))
    assert huge.status_code == 413  # stopped by the body limit, same answer
    assert huge.json()["error"]["code"] == "IMAGE_TOO_LARGE"

    fits = await upload(gw, token, jpeg + b"\0" * (MIB - len(jpeg)))
    assert fits.status_code == 200, fits.text
    assert await count(gw, Avatar) == 1


@pytest.mark.parametrize(
    "data",
    [
        b"just some text",
        picture("GIF"),
        picture("BMP"),
        picture("JPEG")[:200],  # cut short
        b"\x89PNG\r\n\x1a\n" + b"\0" * 64,  # the signature and nothing valid after it
        b"RIFF\0\0\0\0WEBPVP8 garbage",
        b"",
    ],
)
async def test_anything_but_a_decodable_jpeg_png_or_webp_is_invalid_image(
    gw: Harness, data: bytes
) -> None:
    token = (await gw.login("shop-mp", "cy"))["accessToken"]
    refused = await upload(gw, token, data)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "INVALID_IMAGE"
    assert await count(gw, Avatar) == 0


async def test_a_bomb_header_is_refused_before_decoding(gw: Harness) -> None:
    token = (await gw.login("shop-mp", "dot"))["accessToken"]
    bomb = picture("PNG", size=(10000, 5000), optimize=True)  # small file, 50 Mpx
    assert len(bomb) < MIB
    refused = await upload(gw, token, bomb)
    assert refused.json()["error"]["code"] == "INVALID_IMAGE"


async def test_the_endpoint_needs_a_live_bearer_token_and_a_form(gw: Harness) -> None:
    anonymous = await upload(gw, None, picture("PNG"))
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "NOT_LOGGED_IN"
    forged = await upload(gw, "not-a-token", picture("PNG"))
    assert forged.status_code == 401
    assert forged.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert forged.json()["errors"][0]["extensions"]["code"] == "INVALID_TOKEN"

    token = (await gw.login("shop-mp", "eli"))["accessToken"]
    raw = await gw.client.post(
        "/avatars",
        content=picture("PNG"),
        headers={"authorization": f"Bearer {token}", "content-type": "image/png"},
    )
    assert (raw.status_code, raw.json()["error"]["code"]) == (400, "INVALID_INPUT")
    no_file = await gw.client.post(
        "/avatars", data={"name": "x"}, files={}, headers={"authorization": f"Bearer {token}"}
    )
    assert no_file.json()["error"]["code"] == "INVALID_INPUT"
    assert await count(gw, Avatar) == 0


async def test_only_ones_own_upload_can_be_chosen(gw: Harness) -> None:
    fay = (await gw.login("shop-mp", "fay"))["accessToken"]
    gus = (await gw.login("shop-mp", "gus"))["accessToken"]
    hers = (await upload(gw, fay, picture("PNG"))).json()

    stolen = await choose(gw, gus, hers["avatar"])
    assert stolen["code"] == "NOT_FOUND"
    garbage = await choose(gw, gus, "../../etc/passwd")
    assert (garbage["code"], garbage["field"]) == ("INVALID_INPUT", "avatar")
    by_url = await choose(gw, fay, hers["url"])  # the url works as well as the id
    assert by_url["account"]["avatarUrl"] == hers["url"]


async def test_uploads_never_chosen_do_not_pile_up(gw: Harness) -> None:
    token = (await gw.login("shop-mp", "hal"))["accessToken"]
    first = (await upload(gw, token, picture("PNG"))).json()
    second = (await upload(gw, token, picture("JPEG"))).json()
    assert (await fetch(gw, first["url"])).status_code == 404  # replaced, never chosen
    await choose(gw, token, second["avatar"])
    third = (await upload(gw, token, picture("WEBP"))).json()
    assert (await fetch(gw, second["url"])).status_code == 200  # in use: kept
    await choose(gw, token, third["avatar"])
    assert (await fetch(gw, second["url"])).status_code == 404
    assert await count(gw, Avatar) == 1

    cleared = await gw.gql(UPDATE, {"avatar": ""}, token=token)
    assert cleared["data"]["updateProfile"]["account"]["avatarUrl"] is None
    assert (await fetch(gw, third["url"])).status_code == 404


async def test_concurrent_uploads_all_answer(gw: Harness) -> None:
    tokens = [(await gw.login("shop-mp", f"u{i}"))["accessToken"] for i in range(6)]
    answers = await asyncio.gather(*(upload(gw, t, picture("JPEG", (900, 900))) for t in tokens))
    assert [a.status_code for a in answers] == [200] * 6
    assert len({a.json()["avatar"] for a in answers}) == 6


@pytest.fixture
async def erasing(database_url: str, configure: Configure) -> AsyncIterator[Harness]:
    config = configure(database_url, accounts={"deletion_grace_days": 0})
    async with running(config) as harness:
        yield harness


async def test_a_deleted_accounts_avatar_is_deleted(erasing: Harness) -> None:
    gw = erasing
    token = (await gw.login("shop-mp", "ida"))["accessToken"]
    mine = (await upload(gw, token, picture("PNG"))).json()
    await choose(gw, token, mine["avatar"])
    other = (await gw.login("shop-mp", "jay"))["accessToken"]
    theirs = (await upload(gw, other, picture("PNG"))).json()

    body = await gw.gql(DELETE, token=token)
    assert body["data"]["deleteAccount"]["__typename"] == "DeleteAccountSuccess", body

    assert (await fetch(gw, mine["url"])).status_code == 404
    assert (await fetch(gw, theirs["url"])).status_code == 200
    assert await count(gw, Avatar) == 1
