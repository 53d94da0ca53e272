"""The sections of the TOML file named by ``GATEWAY_CONFIG``, one model each: what each
accepts, its defaults and its bounds. The loader (``gateway.config``) reads the file and the
environment into them; a bad value stops the process with one line naming the field.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

from gateway.config.web import AdminModel, I18nModel, WebModel, WebScanModel


class ConfigError(Exception):
    """A configuration fault; its message is one line that names the field and no secret."""


class AppKind(StrEnum):
    MINIPROGRAM = "miniprogram"
    OFFICIAL_ACCOUNT = "official_account"
    WEBSITE = "website"
    MOBILE_APP = "mobile_app"


@dataclass(frozen=True)
class AppConfig:
    key: str
    kind: AppKind
    appid: str
    secret: SecretStr = field(repr=False)
    platform: str | None
    name: str


@dataclass(frozen=True)
class TokenLifetimes:
    access_seconds: int = 15 * 60
    refresh_seconds: int = 30 * 24 * 3600
    by_kind: dict[str, tuple[int, int]] = field(default_factory=dict)
    # a just-rotated refresh token still works this long (clients that race or lose a
    # response); 0 turns it off: any reuse then revokes the session
    refresh_reuse_grace_seconds: int = 30

    def for_kind(self, kind: str | None) -> tuple[int, int]:
        """(access, refresh) seconds for an app kind; the defaults where none is set."""
        return self.by_kind.get(kind or "", (self.access_seconds, self.refresh_seconds))


class AppModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    kind: AppKind
    appid: str = Field(min_length=1, max_length=64)
    secret: SecretStr | None = Field(default=None, min_length=1)
    secret_env: str | None = None
    platform: str | None = Field(default=None, min_length=1, max_length=64)
    name: str = ""

    @model_validator(mode="after")
    def _one_secret(self) -> AppModel:
        if self.secret is None and self.secret_env is None:
            raise ValueError("needs `secret` or `secret_env`")
        if self.secret_env is not None and self.secret is None:
            value = os.environ.get(self.secret_env)
            if not value:
                raise ValueError(f"environment variable {self.secret_env} is not set")
            self.secret = SecretStr(value)
        return self


class LifetimesModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access_ttl_seconds: int = Field(default=15 * 60, ge=60, le=24 * 3600)
    refresh_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=3600, le=365 * 24 * 3600)


class TokensModel(LifetimesModel):
    """Defaults, and optional ``[tokens.<app kind>]`` tables overriding them per kind."""

    refresh_reuse_grace_seconds: int = Field(default=30, ge=0, le=300)
    miniprogram: LifetimesModel | None = None
    official_account: LifetimesModel | None = None
    website: LifetimesModel | None = None
    mobile_app: LifetimesModel | None = None

    def lifetimes(self) -> TokenLifetimes:
        by_kind = {
            kind.value: (table.access_ttl_seconds, table.refresh_ttl_seconds)
            for kind in AppKind
            if (table := getattr(self, kind.value)) is not None
        }
        return TokenLifetimes(
            self.access_ttl_seconds,
            self.refresh_ttl_seconds,
            by_kind,
            self.refresh_reuse_grace_seconds,
        )


# OWASP's argon2id configurations of equal defence (Password Storage Cheat Sheet): the least
# memory (KiB) for each number of passes; more passes than the table's last row need its memory
OWASP_ARGON2ID_MEMORY_KIB = {1: 46 * 1024, 2: 19 * 1024, 3: 12 * 1024, 4: 9 * 1024, 5: 7 * 1024}


def owasp_memory_floor_kib(time_cost: int) -> int:
    """The least memory OWASP accepts with ``time_cost`` passes."""
    return OWASP_ARGON2ID_MEMORY_KIB[min(time_cost, max(OWASP_ARGON2ID_MEMORY_KIB))]


class PasswordsModel(BaseModel):
    """argon2id cost: any of OWASP's equal-defence pairs, or more of either.

    The default is OWASP's 7 MiB, t=5, p=1 pair (Keycloak's default too): as strong as
    19 MiB, t=2 by OWASP's table and no slower to compute, while each hash in progress holds
    7 MiB instead of 19, which is most of a process's peak memory above its idle size.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_cost: int = Field(default=5, ge=1, le=20)
    memory_kib: int = Field(
        default=7 * 1024, ge=min(OWASP_ARGON2ID_MEMORY_KIB.values()), le=1024 * 1024
    )
    parallelism: int = Field(default=1, ge=1, le=16)
    # admission: hashes at once (0: one fewer than the cores, at least one) and how many may
    # wait; beyond that a password request is answered TEMPORARILY_UNAVAILABLE at once
    max_concurrent: int = Field(default=0, ge=0, le=256)
    max_waiting: int = Field(default=64, ge=0, le=100_000)

    @model_validator(mode="after")
    def _owasp_floor(self) -> PasswordsModel:
        floor = owasp_memory_floor_kib(self.time_cost)
        if self.memory_kib < floor:
            pairs = ", ".join(f"{m}/{t}" for t, m in OWASP_ARGON2ID_MEMORY_KIB.items())
            raise ValueError(
                f"argon2id with time_cost={self.time_cost} needs memory_kib >= {floor} "
                f"(OWASP's equal-defence memory_kib/time_cost pairs: {pairs})"
            )
        return self


class ThrottleModel(BaseModel):
    """Keycloak-style brute-force protection for password logins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    failure_factor: int = Field(default=10, ge=1, le=1000)
    wait_step_seconds: float = Field(default=60.0, gt=0)
    max_wait_seconds: float = Field(default=900.0, gt=0)
    reset_after_seconds: float = Field(default=12 * 3600.0, gt=0)
    # per address, failures only: sized for NAT (offices, campuses, carriers)
    address_failure_factor: int = Field(default=1000, ge=1, le=10_000_000)
    # ... per window of this many seconds: at a NAT address honest typos never stop for the
    # reset_after quiet seconds that forget a count, so without a window they would add up
    address_window_seconds: float = Field(default=3600.0, gt=0, le=7 * 86400)
    # per username once its 10 * failure_factor free failures are spent: one check per delay,
    # queued at most account_max_delay_seconds ahead; at most max_delayed_attempts asleep
    account_delay_seconds: float = Field(default=5.0, gt=0, le=3600)
    account_max_delay_seconds: float = Field(default=60.0, ge=0, le=3600)
    # per process; each holds one of GATEWAY_MAX_IN_PROGRESS request slots while it waits
    max_delayed_attempts: int = Field(default=32, ge=1, le=1_000_000)
    registrations_per_hour: int = Field(default=20, ge=1, le=1_000_000)  # per client address


class AccountsModel(BaseModel):
    """People's rights: deletion's cooling-off, re-authentication, username reservation, how
    often a person may export their data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deletion_grace_days: int = Field(default=7, ge=0, le=90)
    reauthentication_seconds: int = Field(default=300, ge=0, le=24 * 3600)
    username_reservation_days: int = Field(default=30, ge=0, le=3650)
    purge_interval_seconds: float = Field(default=3600.0, gt=0)
    # one personalData export per account per this many seconds (0: no limit)
    personal_data_interval_seconds: int = Field(default=60, ge=0, le=24 * 3600)


class AuditModel(BaseModel):
    """How long audit events are kept (``gateway audit prune``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retention_days: int = Field(default=180, ge=1, le=3650)


class ApiModel(BaseModel):
    """The GraphQL API for frontends: ``trusted_documents_only`` runs only the SDK's documents
    and those of ``trusted_documents_file`` (JSON of sha256 hex -> document; relative to the
    config file) for frontend callers (``gateway.api.trusted``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trusted_documents_only: bool = False
    trusted_documents_file: Path | None = None


class ProfileModel(BaseModel):
    """What a person may put in their profile. ``msg_sec_check``: nicknames go through WeChat's
    content check first (mini-programs must, for text users publish); ``public_url``: the
    origin avatar URLs are built on, when the gateway's own (as requests reach it) is not the
    one phones see, e.g. behind a proxy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    msg_sec_check: bool = False
    public_url: str | None = Field(default=None, pattern=r"^https?://[^/?#\s]+$")


class PerformanceModel(BaseModel):
    """``fast_paths = false`` sends every login and refresh down the transactional (reference)
    path, never the one-statement (PostgreSQL) or writer-thread (SQLite) copies: to compare
    the two, or to rule out a fast-path bug in production; and every GraphQL document, trusted
    ones too, down strawberry's full path (not gateway.api.prepared's nor its plans). Slower;
    answers and rows the same."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fast_paths: bool = True


class PartnerModel(BaseModel):
    """A partner service from the config file; synced into the database at start-up."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
    secret: SecretStr | None = Field(default=None, min_length=16)
    secret_env: str | None = None
    apps: list[str] = Field(default_factory=list)
    platforms: list[str] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list)
    rate_limit_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    # account events by webhook (``gateway.events``): where, and the variable holding the
    # ``whsec_...`` signing secret (the file never holds it)
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)
    webhook_secret_env: str | None = None
    webhook_secret: SecretStr | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _webhook(self) -> PartnerModel:
        if self.webhook_url is None:
            return self
        value = os.environ.get(self.webhook_secret_env or "")
        if not value or not _is_webhook_secret(value):
            raise ValueError(
                "webhook_url needs webhook_secret_env naming a set variable holding a "
                "whsec_ secret (whsec_ and base64 of 24 to 64 bytes)"
            )
        self.webhook_secret = SecretStr(value)
        return self

    @model_validator(mode="after")
    def _check(self) -> PartnerModel:
        from gateway.partners.scopes import ALL

        unknown = set(self.scopes) - ALL
        if unknown:
            raise ValueError(f"unknown scopes {sorted(unknown)}; known: {sorted(ALL)}")
        if self.secret is None:
            value = os.environ.get(self.secret_env or "")
            if not value or len(value) < 16:
                raise ValueError(
                    "needs `secret` or `secret_env` naming a set variable (16+ characters)"
                )
            self.secret = SecretStr(value)
        return self


def _is_webhook_secret(value: str) -> bool:
    """``whsec_`` and the base64 of 24 to 64 random bytes, as the Standard Webhooks libraries
    read it (a secret they would refuse is refused here, at start-up)."""
    if not value.startswith("whsec_"):
        return False
    try:
        raw = base64.b64decode(value.removeprefix("whsec_"), validate=True)
    except ValueError:
        return False
    return 24 <= len(raw) <= 64


DEFAULT_RETRY_SECONDS = (5.0, 30.0, 120.0, 600.0, 3600.0, 10800.0, 36000.0)


class EventsModel(BaseModel):
    """Account events for partners (``gateway.events``): how long they are kept, webhook
    deliveries and the pull feed alike, before the maintenance task prunes them; the webhooks'
    retry schedule (the n-th delay waited after the n-th failed attempt; after the last, the
    delivery is failed), how long one attempt may take, how often an idle worker looks for
    work, and which URLs may receive (no SSRF: plain http and non-public addresses only when
    allowed here)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retention_days: int = Field(default=30, ge=1, le=3650)

    retry_seconds: tuple[float, ...] = Field(default=DEFAULT_RETRY_SECONDS, max_length=30)
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    poll_seconds: float = Field(default=0.5, gt=0, le=60)
    # a claimed delivery not recorded within this (its process died) is tried again
    lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    concurrency: int = Field(default=16, ge=1, le=1000)  # webhooks in flight per process
    allow_http_loopback: bool = False
    allow_private_networks: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> EventsModel:
        if any(not 0 < delay <= 7 * 24 * 3600 for delay in self.retry_seconds):
            raise ValueError("retry_seconds: every delay must be > 0 and at most a week")
        if self.lease_seconds <= self.timeout_seconds:
            raise ValueError("lease_seconds must be longer than timeout_seconds")
        return self


class SmsProviderModel(BaseModel):
    """``[sms.aliyun]`` / ``[sms.tencent]``: the adapters' own keys (sign name, template id,
    the names of the environment variables holding the keys); each adapter validates them."""

    model_config = ConfigDict(extra="allow", frozen=True)


class SmsModel(BaseModel):
    """``[sms]``: one-time codes by SMS (``gateway.sms``). ``provider`` defaults to
    ``sandbox`` in sandbox mode and to none (SMS off) otherwise; the sandbox provider needs no
    other key. The limits are against SMS pumping: every message costs money."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["sandbox", "aliyun", "tencent"] | None = None
    signup: bool = True  # a code for a phone nobody holds logs in to a new account
    countries: tuple[str, ...] = Field(default=("+86",), min_length=1)
    hourly_budget: int = Field(default=1000, ge=1, le=10_000_000)  # codes sent, all numbers
    code_ttl_seconds: int = Field(default=300, ge=60, le=3600)
    max_attempts: int = Field(default=5, ge=1, le=20)
    per_phone_minute: int = Field(default=1, ge=1, le=100)
    per_phone_hour: int = Field(default=5, ge=1, le=1000)
    per_phone_day: int = Field(default=10, ge=1, le=10_000)
    per_address_hour: int = Field(default=20, ge=1, le=1_000_000)
    aliyun: SmsProviderModel | None = None
    tencent: SmsProviderModel | None = None

    @model_validator(mode="after")
    def _calling_codes(self) -> SmsModel:
        for code in self.countries:
            if not (code.startswith("+") and code[1:].isdigit() and len(code) <= 4):
                raise ValueError(f"countries: {code!r} is not a calling code like '+86'")
        return self


class FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    apps: list[AppModel] = Field(default_factory=list)
    tokens: TokensModel = Field(default_factory=TokensModel)
    passwords: PasswordsModel = Field(default_factory=PasswordsModel)
    throttle: ThrottleModel = Field(default_factory=ThrottleModel)
    partners: list[PartnerModel] = Field(default_factory=list)
    accounts: AccountsModel = Field(default_factory=AccountsModel)
    audit: AuditModel = Field(default_factory=AuditModel)
    events: EventsModel = Field(default_factory=EventsModel)
    profile: ProfileModel = Field(default_factory=ProfileModel)
    api: ApiModel = Field(default_factory=ApiModel)
    performance: PerformanceModel = Field(default_factory=PerformanceModel)
    sms: SmsModel = Field(default_factory=SmsModel)
    web: WebModel = Field(default_factory=WebModel)
    web_scan: WebScanModel = Field(default_factory=WebScanModel)
    i18n: I18nModel = Field(default_factory=I18nModel)
    admin: AdminModel = Field(default_factory=AdminModel)
