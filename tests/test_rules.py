"""Pure rules, tested without a database or a server: identity keys, usernames, merge order,
partner entitlements, and which GraphQL member each error becomes. They run in milliseconds,
beside the end-to-end tests that prove the same rules over HTTP."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from gateway import errors
from gateway.accounts.model import (
    IdentityKey,
    IdentityKind,
    IdentityView,
    normalize_username,
    survivor_order,
    wechat_keys,
)
from gateway.api.errors import ErrorCode, graphql_type
from gateway.api.results import declared_errors
from gateway.api.schema import build_schema
from gateway.config import AppConfig, AppKind, Settings
from gateway.partners import scopes
from gateway.partners.entitlements import Entitlements
from gateway.partners.registry import PartnerView

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=40)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


# -- identity keys -----------------------------------------------------------------------------
@given(appid=ids, openid=ids, platform=ids, unionid=ids)
def test_a_unionid_key_comes_first_and_the_openid_key_last(
    appid: str, openid: str, platform: str, unionid: str
) -> None:
    keys = wechat_keys(appid, openid, platform, unionid)
    assert keys == [IdentityKey.unionid(platform, unionid), IdentityKey.openid(appid, openid)]


@given(appid=ids, openid=ids, unionid=st.none() | ids)
def test_no_unionid_key_without_a_platform(appid: str, openid: str, unionid: str | None) -> None:
    assert wechat_keys(appid, openid, None, unionid) == [IdentityKey.openid(appid, openid)]


def test_keys_of_different_kinds_never_collide() -> None:
    same = "o-123"
    keys = {IdentityKey.openid("", same), IdentityKey.username(same), IdentityKey.phone(same)}
    assert len(keys) == 3
    assert len({k.lock_id() for k in keys}) == 3


# Computed once from IdentityKey.lock_id and pinned: these numbers must NEVER change. Every
# gateway process (and, during a rolling deploy, two releases side by side) must take the same
# PostgreSQL advisory lock for the same identity, or two first logins of one person race past
# each other and make two accounts. Changing the function is a breaking change of the protocol
# between processes, not a refactoring: it needs a deploy that stops every old process first.
PINNED_LOCK_IDS = [
    (IdentityKey.openid("wxtestshop000001", "o-123"), -6275998762799716934),
    (IdentityKey.unionid("test-platform", "u-123"), 6599156386201794944),
    (IdentityKey.username("alice"), 6987847768929979157),
    (IdentityKey.phone("+8613800138000"), 1053615805481759939),
    (IdentityKey.openid("", ""), 5172848600329265169),
    (IdentityKey.username("o-123"), -6910668613383451603),
    (IdentityKey.phone("o-123"), 2979712327985541125),
]


@pytest.mark.parametrize(("key", "expected"), PINNED_LOCK_IDS)
def test_a_lock_id_never_changes_across_releases(key: IdentityKey, expected: int) -> None:
    assert key.lock_id() == expected


@given(kind=st.sampled_from(list(IdentityKind)), scope=ids, subject=ids)
def test_a_lock_id_fits_in_a_bigint(kind: IdentityKind, scope: str, subject: str) -> None:
    assert -(2**63) <= IdentityKey(kind, scope, subject).lock_id() < 2**63


# -- usernames ---------------------------------------------------------------------------------
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=3, max_size=32))
def test_normalizing_a_username_twice_changes_nothing(raw: str) -> None:
    once = normalize_username(raw)
    assert normalize_username(once) == once


def test_lookalike_usernames_normalize_to_one() -> None:
    fullwidth = "\uff21\uff2c\uff29\uff23\uff25"  # ALICE
    assert normalize_username(fullwidth) == normalize_username(" Alice ") == "alice"


@pytest.mark.parametrize("raw", ["ab", "a" * 33, "al ice", "alice!", "элис"])
def test_a_malformed_username_names_the_field(raw: str) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        normalize_username(raw)
    assert caught.value.field == "username"


# -- merge order -------------------------------------------------------------------------------
@given(st.permutations(range(5)))
def test_the_oldest_account_survives_whatever_order_they_come_in(order: list[int]) -> None:
    accounts = [(T0 + timedelta(seconds=i), uuid.UUID(int=100 - i)) for i in range(5)]
    assert survivor_order([accounts[i] for i in order]) == uuid.UUID(int=100)


def test_a_tie_in_age_goes_to_the_smaller_id() -> None:
    a, b = uuid.UUID(int=1), uuid.UUID(int=2)
    assert survivor_order([(T0, b), (T0, a)]) == a


# -- partner entitlements ----------------------------------------------------------------------
SHOP = AppConfig("shop", AppKind.MINIPROGRAM, "wx-shop", SecretStr("s" * 16), "plat", "Shop")
CLUB = AppConfig("club", AppKind.MINIPROGRAM, "wx-club", SecretStr("s" * 16), "plat", "Club")
RULES = Entitlements([SHOP, CLUB])


def partner(apps: set[str], platforms: set[str], granted: set[str]) -> PartnerView:
    return PartnerView(
        "p", frozenset(apps), frozenset(platforms), frozenset(granted), 60, "", False
    )


def identity(kind: IdentityKind, scope: str, subject: str) -> IdentityView:
    return IdentityView(uuid.uuid4(), uuid.UUID(int=1), kind, scope, subject, None, T0)


ACCOUNT = [
    identity(IdentityKind.WECHAT_OPENID, "wx-shop", "o-shop"),
    identity(IdentityKind.WECHAT_OPENID, "wx-club", "o-club"),
    identity(IdentityKind.WECHAT_UNIONID, "plat", "u-1"),
    identity(IdentityKind.USERNAME, "", "alice"),
]


def test_a_partner_sees_only_identities_of_its_apps_and_no_identifiers_without_scope() -> None:
    shown = RULES.visible(partner({"shop"}, set(), {scopes.LOOKUP}), ACCOUNT)
    assert [(v.app_key, v.openid) for v in shown] == [("shop", None)]


def test_identifiers_are_revealed_only_where_entitled() -> None:
    crm = partner({"shop"}, {"plat"}, {scopes.LOOKUP, scopes.IDENTIFIERS, scopes.ALL_APPS})
    shown = {v.kind: v for v in RULES.visible(crm, ACCOUNT) if v.app_key != "club"}
    assert shown[IdentityKind.WECHAT_OPENID].openid == "o-shop"
    assert shown[IdentityKind.WECHAT_UNIONID].unionid == "u-1"
    club = [v for v in RULES.visible(crm, ACCOUNT) if v.app_key == "club"]
    assert [(v.openid, v.unionid) for v in club] == [(None, None)]


def test_an_account_outside_the_partners_apps_is_not_its_business() -> None:
    assert not RULES.entitled_to_any(partner({"club"}, set(), {scopes.LOOKUP}), ACCOUNT[:1])
    assert RULES.entitled_to_any(partner({"shop"}, set(), {scopes.LOOKUP}), ACCOUNT[:1])


def test_asking_outside_ones_entitlement_is_refused_before_any_read() -> None:
    crm = partner({"shop"}, set(), {scopes.LOOKUP})
    with pytest.raises(errors.NotEntitled):
        RULES.openid_key(crm, "club", "o-1")
    with pytest.raises(errors.NotEntitled):
        RULES.unionid_key(crm, "plat", "u-1")
    with pytest.raises(errors.NotEntitled):
        Entitlements.check_scope(crm, scopes.LOOKUP_PHONE)
    assert RULES.openid_key(crm, "shop", "o-1") == IdentityKey.openid("wx-shop", "o-1")


# -- errors and their GraphQL members ----------------------------------------------------------
def test_every_error_class_has_a_code_of_the_schema_and_a_graphql_member() -> None:
    for cls in errors.all_error_classes():
        assert ErrorCode(cls.code).value == cls.code
        assert graphql_type(cls).__name__.endswith("Error")


def test_every_result_union_has_a_member_for_each_declared_error() -> None:
    schema = build_schema(Settings(introspection=True))._schema
    for union_name, declared in declared_errors().items():
        union = schema.type_map[union_name]
        members = {t.name for t in union.types}  # type: ignore[attr-defined]
        for cls in declared:
            assert graphql_type(cls).__name__ in members, (union_name, cls)


def test_an_errcode_is_restored_as_the_same_class() -> None:
    """Outcomes remembered in Redis come back as the error they were."""
    for cls in errors.all_error_classes():
        assert errors.error_class(cls.code) is cls


def test_a_remembered_access_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token's signature is checked once per process, its expiry at every use."""
    from gateway.sessions import tokens
    from gateway.sessions.keys import SigningKeys, new_key

    access = tokens.AccessTokens(SigningKeys([new_key()]), "https://gateway.test")
    now = datetime.now(UTC)
    claims = tokens.AccessClaims(uuid.uuid4(), uuid.uuid4(), "shop-mp", now + timedelta(seconds=60))
    token = access.issue(claims, now)
    assert access.check(token).session_id == claims.session_id  # verified, then remembered
    assert access.check(token).session_id == claims.session_id
    later = now.timestamp() + 61
    monkeypatch.setattr(time, "time", lambda: later)  # the clock moves on, past the exp
    with pytest.raises(tokens.TokenRejected) as rejected:
        access.check(token)
    assert rejected.value.code == "TOKEN_EXPIRED"
    with pytest.raises(tokens.TokenRejected) as forged:
        access.check(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert forged.value.code == "INVALID_TOKEN"
