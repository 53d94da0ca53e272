"""Every flow a newcomer can try against the sandbox alone: the official account and website
doors, snapshot visitors, bindUnionId with the sandbox's open data, bindPhoneNumber."""

from __future__ import annotations

from pathlib import Path

from tests.support.sandbox import sandbox

OA_LOGIN = """mutation($app: String!, $code: String!, $state: String) {
  loginByCode(input: {app: $app, code: $code, state: $state, client: {platform: "web"}}) {
    __typename ... on LoginSuccess { accessToken account { id identities { kind } } }
    ... on Error { code } } }"""
AUTHORIZE = """query($app: String!, $scope: String) {
  authorizationUrl(app: $app, redirectUri: "https://example.com/cb", scope: $scope) {
    ... on AuthorizationUrl { url state } } }"""
BIND_UNIONID = """mutation($d: String!, $iv: String!, $raw: String, $sig: String) {
  bindUnionId(input: {encryptedData: $d, iv: $iv, rawData: $raw, signature: $sig}) {
    __typename ... on BindUnionIdSuccess { linked account { id } } ... on Error { code } } }"""
BIND_PHONE = """mutation($code: String!) { bindPhoneNumber(input: {code: $code}) {
  __typename ... on BindPhoneNumberSuccess { linked account { identities { kind label } } }
  ... on Error { code } } }"""


async def test_official_account_and_website_doors_join_the_mini_program_account(
    workdir: Path,
) -> None:
    async with sandbox() as gw:
        mini = await gw.login("shop-mp", "alice")
        for app, scope in (("news-oa", "snsapi_userinfo"), ("web", "snsapi_login")):
            auth = (await gw.gql(AUTHORIZE, {"app": app, "scope": scope}))["data"]
            state = auth["authorizationUrl"]["state"]
            assert "#wechat_redirect" in auth["authorizationUrl"]["url"]
            code = await gw.mint(app, "alice", scope=scope)
            body = await gw.gql(OA_LOGIN, {"app": app, "code": code, "state": state})
            assert body["data"]["loginByCode"]["account"]["id"] == mini["account"]["id"]
        auth = (await gw.gql(AUTHORIZE, {"app": "news-oa", "scope": "snsapi_base"}))["data"]
        state = auth["authorizationUrl"]["state"]
        snapshot = await gw.mint("news-oa", "alice", snapshot="1")
        body = await gw.gql(OA_LOGIN, {"app": "news-oa", "code": snapshot, "state": state})
        assert body["data"]["loginByCode"] == {
            "__typename": "SnapshotUserError",
            "code": "SNAPSHOT_USER",
        }


async def test_open_data_and_phone_codes_from_the_sandbox(workdir: Path) -> None:
    async with sandbox() as gw:
        login = await gw.login("shop-mp", "bob")
        data = (
            await gw.client.get("/sandbox/open-data", params={"app": "shop-mp", "user": "bob"})
        ).json()
        body = await gw.gql(
            BIND_UNIONID,
            {
                "d": data["encryptedData"],
                "iv": data["iv"],
                "raw": data["rawData"],
                "sig": data["signature"],
            },
            token=login["accessToken"],
        )
        assert body["data"]["bindUnionId"]["__typename"] == "BindUnionIdSuccess"
        phone = (
            await gw.client.get(
                "/sandbox/phone-code",
                params={"app": "shop-mp", "user": "bob", "phone": "13800138000"},
            )
        ).json()
        body = await gw.gql(BIND_PHONE, {"code": phone["code"]}, token=login["accessToken"])
        result = body["data"]["bindPhoneNumber"]
        assert result["linked"] is True
        labels = [i["label"] for i in result["account"]["identities"] if i["kind"] == "PHONE"]
        assert labels
        assert "13800138000" not in labels[0]
        bad = await gw.client.get(
            "/sandbox/phone-code", params={"app": "shop-mp", "user": "b", "phone": "12ab"}
        )
        assert bad.status_code == 400
