"""The SMS provider adapters (issue 28): their signers reproduce the providers' published worked
examples exactly, and each adapter, against an in-test emulation of its provider
(``httpx.MockTransport``), sends a well-formed signed request and turns each answer into the
right outcome: success, ``SmsUnavailable`` (with a wait) or ``SmsRejected``.

Published examples used:
- Aliyun SMS, "签名机制" (signature method; alibabacloud.com/help/zh/sms/signature-method, the
  older "HTTP协议及签名" page on help.aliyun.com): ``SendSms`` with AccessKeyId ``testId``,
  secret ``testSecret``, nonce ``45e25e9b-…``, timestamp ``2017-07-12T02:42:19Z`` →
  ``Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D``.
- Tencent Cloud API, "Signature v3" / "签名方法 v3" (cloud.tencent.com/document/api/213/30654; in
  English e.g. tencentcloud.com/document/product/1026/31038): CVM ``DescribeInstances``,
  timestamp 1551113065. The English edition signs ``content-type;host`` with SecretKey
  ``Gu5t9xGARNpq86cd98joQYCN3EXAMPLE`` → payload hash ``35e9c5b0…``, canonical request hash
  ``5ffe6a04…``, signature ``72e494ea…``; the current Chinese edition also signs
  ``x-tc-action`` (as the adapter does) → canonical request hash ``7019a55b…``,
  SecretSigning ``b596b923…``, signature ``10b1a37a…``.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable

import httpx
import pytest

from gateway.sms import aliyun, cloud, tencent
from gateway.sms.provider import SmsMessage, SmsProvider, SmsRejected, SmsUnavailable

Handler = Callable[[httpx.Request], httpx.Response]
CODE = "468213"
NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z

# ---- the published examples ----------------------------------------------------------------

ALIYUN_DOC_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}
ALIYUN_DOC_QUERY = (
    "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001"
    "&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B"
    "%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1"
    "&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0"
    "&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D"
    "&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25"
)


def test_aliyun_signer_reproduces_the_published_sendsms_example() -> None:
    assert aliyun.canonical_query(ALIYUN_DOC_PARAMS) == ALIYUN_DOC_QUERY
    signature = aliyun.rpc_signature("GET", ALIYUN_DOC_PARAMS, "testSecret")
    assert signature == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert aliyun.percent_encode(signature) == "zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D"


def test_aliyun_percent_encoding_is_rfc3986_as_the_signature_page_says() -> None:
    assert aliyun.percent_encode("a b*c~d+e/") == "a%20b%2Ac~d%2Be%2F"


TENCENT_DOC_PAYLOAD = (
    b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)
TENCENT_DOC_HEADERS = {
    "content-type": "application/json; charset=utf-8",
    "host": "cvm.tencentcloudapi.com",
}
TENCENT_DOC_CANONICAL = (
    "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
    "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
)
TENCENT_DOC_STRING_TO_SIGN = (
    "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
    "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
)
TENCENT_DOC_AUTHORIZATION = (
    "TC3-HMAC-SHA256 Credential=AKID**********************0123456789EXAMPLE/2019-02-25/cvm/"
    "tc3_request, SignedHeaders=content-type;host, "
    "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
)


def test_tencent_signer_reproduces_the_published_signature_v3_example() -> None:
    canonical = tencent.canonical_request(TENCENT_DOC_HEADERS, TENCENT_DOC_PAYLOAD)
    assert canonical == TENCENT_DOC_CANONICAL
    assert tencent.string_to_sign(1551113065, "cvm", canonical) == TENCENT_DOC_STRING_TO_SIGN
    authorization = tencent.authorization(
        "AKID**********************0123456789EXAMPLE",
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        "cvm",
        TENCENT_DOC_HEADERS,
        TENCENT_DOC_PAYLOAD,
        1551113065,
    )
    assert authorization == TENCENT_DOC_AUTHORIZATION


# The current (Chinese) edition of the page signs x-tc-action too, with its value lower-cased,
# and masks the example keys as 32 asterisks; it prints the derived keys, so the vector holds.
TENCENT_DOC3_HEADERS = {**TENCENT_DOC_HEADERS, "x-tc-action": "DescribeInstances"}
TENCENT_DOC3_CANONICAL = (
    "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n"
    "x-tc-action:describeinstances\n\ncontent-type;host;x-tc-action\n"
    "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
)
TENCENT_DOC3_MASKED_KEY = "*" * 32


def test_tencent_signer_reproduces_the_current_example_with_x_tc_action() -> None:
    canonical = tencent.canonical_request(TENCENT_DOC3_HEADERS, TENCENT_DOC_PAYLOAD)
    assert canonical == TENCENT_DOC3_CANONICAL
    assert tencent.string_to_sign(1551113065, "cvm", canonical).endswith(
        "\n7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
    )
    key = tencent.signing_key(TENCENT_DOC3_MASKED_KEY, "2019-02-25", "cvm")
    assert key.hex() == "b596b923aad85185e2d1f6659d2a062e0a86731226e021e61bfe06f7ed05f5af"
    authorization = tencent.authorization(
        "AKID" + "*" * 32,
        TENCENT_DOC3_MASKED_KEY,
        "cvm",
        TENCENT_DOC3_HEADERS,
        TENCENT_DOC_PAYLOAD,
        1551113065,
    )
    assert authorization.endswith(
        "SignedHeaders=content-type;host;x-tc-action, "
        "Signature=10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
    )


def test_tencent_credential_date_is_utc_not_local() -> None:
    # The page's warning: 1551113065 is 2019-02-26 00:44:25 in UTC+8, but the date is the 25th.
    assert tencent.credential_scope(1551113065, "sms") == "2019-02-25/sms/tc3_request"


# ---- Aliyun against an emulation -------------------------------------------------------------

ALIYUN_SETTINGS = aliyun.AliyunSettings(
    sign_name="微信网关",
    template_code="SMS_100000001",
    template_codes={"en": "SMS_100000002"},
)
ALIYUN_KEYS = cloud.KeyPair("LTAI-test-id", "aliyun-test-secret")


def aliyun_adapter(handler: Handler) -> aliyun.AliyunSms:
    # No client-wide timeout: the adapters must bound every call themselves.
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), timeout=None)
    return aliyun.AliyunSms(
        ALIYUN_SETTINGS,
        ALIYUN_KEYS,
        client,
        base_url="https://dysmsapi.emulated.test",
        clock=lambda: NOW,
        nonce=lambda: "nonce-1",
    )


def aliyun_form(request: httpx.Request) -> dict[str, str]:
    """The emulation's check of the request: a form POST whose signature is right."""
    assert request.method == "POST"
    assert request.url == "https://dysmsapi.emulated.test/"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.url.query == b"", "parameters (the code) must not travel in the URL"
    form = dict(urllib.parse.parse_qsl(request.content.decode("ascii"), strict_parsing=True))
    signature = form.pop("Signature")
    assert signature == aliyun.rpc_signature("POST", form, ALIYUN_KEYS.secret)
    return form


async def test_aliyun_sends_a_well_formed_signed_request() -> None:
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(aliyun_form(request))
        return httpx.Response(200, json={"Code": "OK", "Message": "OK", "BizId": "1^0"})

    provider: SmsProvider = aliyun_adapter(handler)
    await provider.send(SmsMessage("+8613800138000", CODE, "zh-CN"))
    await provider.send(SmsMessage("+85261234567", CODE, "en"))
    domestic, international = seen
    assert domestic == {
        "AccessKeyId": "LTAI-test-id",
        "Action": "SendSms",
        "Format": "JSON",
        "PhoneNumbers": "13800138000",
        "RegionId": "cn-hangzhou",
        "SignName": "微信网关",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "nonce-1",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_100000001",
        "TemplateParam": '{"code":"468213"}',
        "Timestamp": "2023-11-14T22:13:20Z",
        "Version": "2017-05-25",
    }
    assert international["PhoneNumbers"] == "85261234567"
    assert international["TemplateCode"] == "SMS_100000002"


def aliyun_error(code: str, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, json={"Code": code, "Message": f"{code} happened", "RequestId": "r"}
    )


@pytest.mark.parametrize(
    ("answer", "retry_after"),
    [
        (aliyun_error("isv.BUSINESS_LIMIT_CONTROL"), 60),
        (aliyun_error("isv.DAY_LIMIT_CONTROL"), 3600),
        (aliyun_error("isp.SYSTEM_ERROR"), cloud.RETRY_AFTER_OUTAGE),
        (aliyun_error("Throttling.User", 400), cloud.RETRY_AFTER_OUTAGE),
        (aliyun_error("ServiceUnavailable", 503), cloud.RETRY_AFTER_OUTAGE),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), cloud.RETRY_AFTER_OUTAGE),
        (httpx.Response(200, json={"unexpected": True}), cloud.RETRY_AFTER_OUTAGE),
    ],
)
async def test_aliyun_not_now_answers_are_unavailable(
    answer: httpx.Response, retry_after: int
) -> None:
    adapter = aliyun_adapter(lambda request: answer)
    with pytest.raises(SmsUnavailable) as caught:
        await adapter.send(SmsMessage("+8613800138000", CODE))
    assert caught.value.retry_after == retry_after


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("isv.MOBILE_NUMBER_ILLEGAL", 200),
        ("isv.SMS_TEMPLATE_ILLEGAL", 200),
        ("isv.SMS_SIGNATURE_ILLEGAL", 200),
        ("isv.TEMPLATE_MISSING_PARAMETERS", 200),
        ("isv.AMOUNT_NOT_ENOUGH", 200),
        ("isp.RAM_PERMISSION_DENY", 200),
        ("SignatureDoesNotMatch", 400),
        ("InvalidAccessKeyId.NotFound", 404),
    ],
)
async def test_aliyun_refusals_are_rejected_with_the_code(code: str, status: int) -> None:
    adapter = aliyun_adapter(lambda request: aliyun_error(code, status))
    with pytest.raises(SmsRejected) as caught:
        await adapter.send(SmsMessage("+8613800138000", CODE))
    assert code in caught.value.reason


# ---- Tencent against an emulation ------------------------------------------------------------

TENCENT_SETTINGS = tencent.TencentSettings(
    sdk_app_id="1400000001",
    sign_name="微信网关",
    template_id="1000001",
    template_ids={"en-US": "1000002", "en": "1000003"},
)
TENCENT_KEYS = cloud.KeyPair("AKID-test-id", "tencent-test-key")


def tencent_adapter(handler: Handler) -> tencent.TencentSms:
    # No client-wide timeout: the adapters must bound every call themselves.
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), timeout=None)
    return tencent.TencentSms(
        TENCENT_SETTINGS,
        TENCENT_KEYS,
        client,
        base_url="https://sms.emulated.test",
        clock=lambda: NOW,
    )


def tencent_body(request: httpx.Request) -> dict[str, object]:
    """The emulation's check: the TC3 headers, and an Authorization that signs this body."""
    assert request.method == "POST"
    assert request.url == "https://sms.emulated.test/"
    headers = request.headers
    assert headers["x-tc-action"] == "SendSms"
    assert headers["x-tc-version"] == "2021-01-11"
    assert headers["x-tc-region"] == "ap-guangzhou"
    assert headers["x-tc-timestamp"] == "1700000000"
    assert headers["host"] == "sms.emulated.test"
    signed = {name: headers[name] for name in ("content-type", "host", "x-tc-action")}
    expected = tencent.authorization(
        TENCENT_KEYS.key_id, TENCENT_KEYS.secret, "sms", signed, request.content, 1700000000
    )
    assert headers["authorization"] == expected
    assert expected.startswith(
        "TC3-HMAC-SHA256 Credential=AKID-test-id/2023-11-14/sms/tc3_request, "
        "SignedHeaders=content-type;host;x-tc-action, Signature="
    )
    body: dict[str, object] = json.loads(request.content)
    return body


def tencent_status(code: str) -> httpx.Response:
    status = {"SerialNo": "s", "PhoneNumber": "+8613800138000", "Fee": 1, "Code": code}
    status["Message"] = "send success" if code == "Ok" else f"{code} happened"
    return httpx.Response(200, json={"Response": {"SendStatusSet": [status], "RequestId": "r"}})


def tencent_error(code: str, status: int = 200) -> httpx.Response:
    error = {"Code": code, "Message": f"{code} happened"}
    return httpx.Response(status, json={"Response": {"Error": error, "RequestId": "r"}})


async def test_tencent_sends_a_well_formed_signed_request() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(tencent_body(request))
        return tencent_status("Ok")

    provider: SmsProvider = tencent_adapter(handler)
    await provider.send(SmsMessage("+8613800138000", CODE, "zh-CN"))
    await provider.send(SmsMessage("+14155550100", CODE, "en_US"))
    domestic, english = seen
    assert domestic == {
        "PhoneNumberSet": ["+8613800138000"],
        "SmsSdkAppId": "1400000001",
        "SignName": "微信网关",
        "TemplateId": "1000001",
        "TemplateParamSet": [CODE],
    }
    assert english["PhoneNumberSet"] == ["+14155550100"]
    assert english["TemplateId"] == "1000002"


@pytest.mark.parametrize(
    ("answer", "retry_after"),
    [
        (tencent_status("LimitExceeded.PhoneNumberThirtySecondLimit"), 30),
        (tencent_status("LimitExceeded.PhoneNumberOneHourLimit"), 3600),
        (tencent_status("LimitExceeded.SomethingNew"), 60),
        (tencent_error("RequestLimitExceeded"), 5),
        (tencent_error("InternalError.Timeout"), cloud.RETRY_AFTER_OUTAGE),
        (httpx.Response(503, text="upstream down"), cloud.RETRY_AFTER_OUTAGE),
        (httpx.Response(200, json={"Response": {}}), cloud.RETRY_AFTER_OUTAGE),
    ],
)
async def test_tencent_not_now_answers_are_unavailable(
    answer: httpx.Response, retry_after: int
) -> None:
    adapter = tencent_adapter(lambda request: answer)
    with pytest.raises(SmsUnavailable) as caught:
        await adapter.send(SmsMessage("+8613800138000", CODE))
    assert caught.value.retry_after == retry_after


@pytest.mark.parametrize(
    "answer",
    [
        tencent_status("InvalidParameterValue.IncorrectPhoneNumber"),
        tencent_status("FailedOperation.PhoneNumberInBlacklist"),
        tencent_error("FailedOperation.TemplateIncorrectOrUnapproved"),
        tencent_error("FailedOperation.SignatureIncorrectOrUnapproved"),
        tencent_error("InvalidParameterValue.SdkAppIdNotExist"),
        tencent_error("AuthFailure.SignatureFailure"),
        tencent_error("UnauthorizedOperation.SmsSdkAppIdVerifyFail"),
    ],
)
async def test_tencent_refusals_are_rejected_with_the_code(answer: httpx.Response) -> None:
    code = json.loads(answer.content)["Response"]
    code = (code.get("Error") or code["SendStatusSet"][0])["Code"]
    adapter = tencent_adapter(lambda request: answer)
    with pytest.raises(SmsRejected) as caught:
        await adapter.send(SmsMessage("+8613800138000", CODE))
    assert code in caught.value.reason


# ---- both: the wire failing, the configuration, the secrets ----------------------------------


def adapters(handler: Handler) -> list[SmsProvider]:
    return [aliyun_adapter(handler), tencent_adapter(handler)]


@pytest.mark.parametrize(
    "fault",
    [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), httpx.ConnectError("refused")],
)
async def test_a_timeout_or_connection_error_is_unavailable(fault: httpx.TransportError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise fault

    for provider in adapters(handler):
        with pytest.raises(SmsUnavailable) as caught:
            await provider.send(SmsMessage("+8613800138000", CODE))
        assert caught.value.retry_after == cloud.RETRY_AFTER_OUTAGE


async def test_every_call_carries_a_timeout_even_on_a_client_without_one() -> None:
    seen: list[object] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return tencent_status("Ok") if "x-tc-action" in request.headers else aliyun_error("OK")

    for provider in adapters(handler):
        await provider.send(SmsMessage("+8613800138000", CODE))
    expected = {"connect": 2.0, "read": 5.0, "write": 5.0, "pool": 5.0}
    assert seen == [expected, expected]


async def test_a_number_not_in_e164_is_rejected_without_a_call() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no call expected")

    for provider in adapters(handler):
        with pytest.raises(SmsRejected):
            await provider.send(SmsMessage("13800138000", CODE))


async def test_neither_the_code_nor_a_secret_reaches_logs_or_reasons(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        if "x-tc-action" in request.headers:
            error = {"Code": "InvalidParameterValue.TemplateParameterFormatError", "Message": CODE}
            return httpx.Response(200, json={"Response": {"Error": error, "RequestId": "r"}})
        return httpx.Response(200, json={"Code": "isv.INVALID_PARAMETERS", "Message": CODE})

    caplog.set_level(logging.DEBUG)
    for provider in adapters(echo):
        with pytest.raises(SmsRejected) as caught:
            await provider.send(SmsMessage("+8613800138000", CODE))
        assert CODE not in caught.value.reason
        assert CODE not in repr(provider.__dict__)
        assert ALIYUN_KEYS.secret not in repr(provider.__dict__)
        assert TENCENT_KEYS.secret not in repr(provider.__dict__)
    for secret in (CODE, ALIYUN_KEYS.secret, TENCENT_KEYS.secret):
        assert secret not in caplog.text
    assert ALIYUN_KEYS.secret not in repr(ALIYUN_KEYS)


def test_from_settings_reads_keys_and_base_url_from_the_environment() -> None:
    client = httpx.AsyncClient()
    environ = {
        "ALIYUN_ACCESS_KEY_ID": "id-a",
        "ALIYUN_ACCESS_KEY_SECRET": "secret-a",
        "GATEWAY_SMS_ALIYUN_BASE": "http://127.0.0.1:9001/",
        "MY_TC_ID": "id-t",
        "MY_TC_KEY": "secret-t",
    }
    ali = aliyun.AliyunSms.from_settings(ALIYUN_SETTINGS, client, environ)
    assert ali._url == "http://127.0.0.1:9001/"
    assert ali._keys == cloud.KeyPair("id-a", "secret-a")
    settings = tencent.TencentSettings(
        "1400000001", "sign", "1", secret_id_env="MY_TC_ID", secret_key_env="MY_TC_KEY"
    )
    tc = tencent.TencentSms.from_settings(settings, client, environ)
    assert tc._url == "https://sms.tencentcloudapi.com/"
    assert tc._keys == cloud.KeyPair("id-t", "secret-t")


def test_a_missing_key_is_a_config_error_naming_the_variable() -> None:
    client = httpx.AsyncClient()
    with pytest.raises(cloud.SmsConfigError, match="ALIYUN_ACCESS_KEY_SECRET"):
        aliyun.AliyunSms.from_settings(ALIYUN_SETTINGS, client, {"ALIYUN_ACCESS_KEY_ID": "x"})
    with pytest.raises(cloud.SmsConfigError, match="TENCENTCLOUD_SECRET_ID"):
        tencent.TencentSms.from_settings(TENCENT_SETTINGS, client, {})


def test_locale_choice_falls_back_to_the_language_then_the_default() -> None:
    per_locale = {"zh_CN": "zh-cn-template", "en": "en-template"}
    assert cloud.for_locale("zh-CN", "default", per_locale) == "zh-cn-template"
    assert cloud.for_locale("en-GB", "default", per_locale) == "en-template"
    assert cloud.for_locale("fr", "default", per_locale) == "default"
