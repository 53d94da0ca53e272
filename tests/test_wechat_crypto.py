"""WeChat open-data crypto: official demo vector, round trips, and every rejection path."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gateway.wechat.crypto import (
    OpenDataError,
    check_session_signature,
    decrypt_open_data,
    encrypt_open_data,
    raw_data_signature,
    repair_base64,
    verify_open_data,
    verify_signature,
)

# The vector published with WeChat's official WXBizDataCrypt demo.
DEMO_APPID = "wx4f4bc4dec97d474b"
DEMO_SESSION_KEY = "tiihtNczf5v6AKRyjwEUhQ=="
DEMO_IV = "r7BXXKkLb8qrSNn05n0qiA=="
DEMO_ENCRYPTED_DATA = (
    "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC"
    "+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poO"
    "FtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8"
    "xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB"
    "6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJd"
    "NiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOy"
    "uxINew=="
)
DEMO_OPENID = "oGZUI0egBJY1zhBYw2KhdUfwVJJE"

KEY = base64.b64encode(bytes(range(16))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 17))).decode()
ZERO_IV = base64.b64encode(bytes(16)).decode()
APPID = "wxsandbox0001"
OPENID = "o" + "A" * 27
PAYLOAD: dict[str, object] = {
    "openId": OPENID,
    "nickName": "小明",
    "unionId": "u" + "B" * 27,
    "watermark": {"appid": APPID, "timestamp": 1_700_000_000},
}


def assert_code(exc: pytest.ExceptionInfo[OpenDataError], code: str) -> None:
    assert exc.value.code == code


def test_official_demo_vector_decrypts_and_verifies() -> None:
    data = decrypt_open_data(DEMO_SESSION_KEY, DEMO_ENCRYPTED_DATA, DEMO_IV)
    assert data["openId"] == DEMO_OPENID
    assert data["nickName"] == "Band"
    assert data["unionId"] == "ocMvos6NjeKLIBqg5Mr9QjxrP1FA"
    assert data["watermark"] == {"timestamp": 1477314187, "appid": DEMO_APPID}
    verify_open_data(data, appid=DEMO_APPID, openid=DEMO_OPENID)


def test_official_demo_vector_rejects_other_key_and_app() -> None:
    with pytest.raises(OpenDataError) as exc:
        decrypt_open_data(KEY, DEMO_ENCRYPTED_DATA, DEMO_IV)
    assert_code(exc, "INVALID_ENCRYPTED_DATA")
    data = decrypt_open_data(DEMO_SESSION_KEY, DEMO_ENCRYPTED_DATA, DEMO_IV)
    with pytest.raises(OpenDataError) as exc:
        verify_open_data(data, appid=APPID, openid=DEMO_OPENID)
    assert_code(exc, "WATERMARK_MISMATCH")


def test_round_trip_keeps_unicode_and_uses_given_iv() -> None:
    iv = bytes(range(100, 116))
    encrypted, iv_b64 = encrypt_open_data(KEY, PAYLOAD, iv)
    assert base64.b64decode(iv_b64) == iv
    assert len(base64.b64decode(encrypted)) % 16 == 0
    assert decrypt_open_data(KEY, encrypted, iv_b64) == PAYLOAD


def test_random_iv_differs_each_time() -> None:
    first = encrypt_open_data(KEY, PAYLOAD)
    second = encrypt_open_data(KEY, PAYLOAD)
    assert first[1] != second[1]
    assert first[0] != second[0]
    assert decrypt_open_data(KEY, *second) == PAYLOAD


def test_wrong_key_is_rejected_never_garbage() -> None:
    # A wrong key yields a valid PKCS#7 tail about 1 time in 256; try many IVs so a
    # lucky unpad must still fail as "not JSON" rather than return garbage.
    for seed in range(64):
        encrypted, iv = encrypt_open_data(KEY, PAYLOAD, bytes([seed]) * 16)
        with pytest.raises(OpenDataError) as exc:
            decrypt_open_data(OTHER_KEY, encrypted, iv)
        assert_code(exc, "INVALID_ENCRYPTED_DATA")


def test_tampered_last_block_fails_padding() -> None:
    encrypted, iv = encrypt_open_data(KEY, PAYLOAD, bytes(16))
    raw = bytearray(base64.b64decode(encrypted))
    raw[-17] ^= 0x01  # flips the last plaintext byte: the padding length
    with pytest.raises(OpenDataError) as exc:
        decrypt_open_data(KEY, base64.b64encode(bytes(raw)).decode(), iv)
    assert_code(exc, "INVALID_ENCRYPTED_DATA")
    assert "padding" in str(exc.value)


def test_tampered_first_block_fails_as_not_json() -> None:
    encrypted, iv = encrypt_open_data(KEY, PAYLOAD, bytes(16))
    raw = bytearray(base64.b64decode(encrypted))
    raw[0] ^= 0xFF  # garbles the first plaintext block, padding stays intact
    with pytest.raises(OpenDataError) as exc:
        decrypt_open_data(KEY, base64.b64encode(bytes(raw)).decode(), iv)
    assert_code(exc, "INVALID_ENCRYPTED_DATA")


def test_truncated_ciphertext_is_rejected() -> None:
    encrypted, iv = encrypt_open_data(KEY, PAYLOAD)
    raw = base64.b64decode(encrypted)
    for cut in (raw[:-1], raw[:-16], b""):
        with pytest.raises(OpenDataError) as exc:
            decrypt_open_data(KEY, base64.b64encode(cut).decode(), iv)
        assert_code(exc, "INVALID_ENCRYPTED_DATA")


@pytest.mark.parametrize(
    ("session_key", "iv"),
    [
        (base64.b64encode(bytes(15)).decode(), base64.b64encode(bytes(16)).decode()),
        (base64.b64encode(bytes(32)).decode(), base64.b64encode(bytes(16)).decode()),
        (KEY, base64.b64encode(bytes(8)).decode()),
        (KEY, ""),
    ],
)
def test_wrong_key_or_iv_length(session_key: str, iv: str) -> None:
    encrypted, _ = encrypt_open_data(KEY, PAYLOAD)
    with pytest.raises(OpenDataError) as exc:
        decrypt_open_data(session_key, encrypted, iv)
    assert_code(exc, "INVALID_ENCRYPTED_DATA")


def test_non_object_json_is_rejected() -> None:
    key = base64.b64decode(KEY)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(b"[1, 2, 3]") + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    with pytest.raises(OpenDataError) as exc:
        decrypt_open_data(KEY, base64.b64encode(ciphertext).decode(), ZERO_IV)
    assert_code(exc, "INVALID_ENCRYPTED_DATA")
    assert "object" in str(exc.value)


def test_spaces_for_plus_are_repaired() -> None:
    assert repair_base64("+/+/") == b"\xfb\xff\xbf"
    assert repair_base64(" / /") == b"\xfb\xff\xbf"
    # Find an encryption whose base64 holds a '+', then mangle it the way forms do.
    for seed in range(256):
        encrypted, iv = encrypt_open_data(KEY, PAYLOAD, bytes([seed]) * 16)
        if "+" in encrypted + iv:
            break
    else:
        pytest.fail("no '+' in 256 encryptions")
    mangled = (encrypted.replace("+", " "), iv.replace("+", " "))
    assert decrypt_open_data(KEY.replace("+", " "), *mangled) == PAYLOAD


@pytest.mark.parametrize("value", ["not base64!", "abc", "YWJj\n", "YW=Jj", "ä" * 4, "YWJj-_"])
def test_non_base64_is_rejected(value: str) -> None:
    with pytest.raises(OpenDataError) as exc:
        repair_base64(value)
    assert_code(exc, "INVALID_ENCRYPTED_DATA")


def test_non_base64_encrypted_data_is_rejected() -> None:
    _, iv = encrypt_open_data(KEY, PAYLOAD)
    with pytest.raises(OpenDataError) as exc:
        decrypt_open_data(KEY, "%%%not-base64%%%", iv)
    assert_code(exc, "INVALID_ENCRYPTED_DATA")


def test_verify_accepts_matching_watermark_and_openid() -> None:
    verify_open_data(PAYLOAD, appid=APPID, openid=OPENID)


@pytest.mark.parametrize(
    "watermark", [{"appid": "wxother"}, {}, None, "wxsandbox0001", {"appid": None}]
)
def test_wrong_or_missing_watermark(watermark: object) -> None:
    data = {**PAYLOAD, "watermark": watermark}
    with pytest.raises(OpenDataError) as exc:
        verify_open_data(data, appid=APPID, openid=OPENID)
    assert_code(exc, "WATERMARK_MISMATCH")


def test_missing_watermark_key() -> None:
    data = {key: value for key, value in PAYLOAD.items() if key != "watermark"}
    with pytest.raises(OpenDataError) as exc:
        verify_open_data(data, appid=APPID, openid=OPENID)
    assert_code(exc, "WATERMARK_MISMATCH")


@pytest.mark.parametrize("openid", ["o" + "C" * 27, "", None])
def test_wrong_openid(openid: object) -> None:
    data = {**PAYLOAD, "openId": openid}
    with pytest.raises(OpenDataError) as exc:
        verify_open_data(data, appid=APPID, openid=OPENID)
    assert_code(exc, "OPENID_MISMATCH")


def test_signature_matches_sha1_of_raw_data_and_key_string() -> None:
    raw = '{"nickName":"Band","gender":1}'
    expected = hashlib.sha1((raw + KEY).encode()).hexdigest()
    assert raw_data_signature(raw, KEY) == expected
    verify_signature(raw, KEY, expected)


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "0" * 40,
        "not hex at all",
        "签名",
        "UPPER",
    ],
)
def test_bad_signature(signature: str) -> None:
    with pytest.raises(OpenDataError) as exc:
        verify_signature('{"nickName":"Band"}', KEY, signature)
    assert_code(exc, "SIGNATURE_MISMATCH")


def test_signature_with_other_key_or_raw_data_fails() -> None:
    raw = '{"nickName":"Band"}'
    good = raw_data_signature(raw, KEY)
    for args in ((raw, OTHER_KEY, good), (raw + " ", KEY, good), (raw, KEY, good.upper())):
        with pytest.raises(OpenDataError) as exc:
            verify_signature(*args)
        assert_code(exc, "SIGNATURE_MISMATCH")


def test_check_session_signature_uses_key_string_bytes() -> None:
    expected = hmac.new(KEY.encode(), b"", hashlib.sha256).hexdigest()
    assert check_session_signature(KEY) == expected
    decoded_key = hmac.new(base64.b64decode(KEY), b"", hashlib.sha256).hexdigest()
    assert check_session_signature(KEY) != decoded_key
    assert len(expected) == 64
    assert expected == expected.lower()


def test_encrypt_rejects_bad_key_or_iv() -> None:
    with pytest.raises(OpenDataError):
        encrypt_open_data("c2hvcnQ=", PAYLOAD)
    with pytest.raises(OpenDataError):
        encrypt_open_data(KEY, PAYLOAD, bytes(15))
