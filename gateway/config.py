"""Settings from the environment and apps from the TOML file named by ``GATEWAY_CONFIG``.

Everything here is validated once at start-up, so that a bad configuration stops the
process with one line naming the field, and never leaks a secret into that line.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_WECHAT_API_BASE = "https://api.weixin.qq.com"
SANDBOX_WECHAT_API_BASE = "http://wechat-sandbox"
DEFAULT_SQLITE_FILE = "gateway.db"


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


class _AppModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    kind: AppKind
    appid: str = Field(min_length=1, max_length=64)
    secret: SecretStr | None = Field(default=None, min_length=1)
    secret_env: str | None = None
    platform: str | None = Field(default=None, min_length=1, max_length=64)
    name: str = ""

    @model_validator(mode="after")
    def _one_secret(self) -> _AppModel:
        if self.secret is None and self.secret_env is None:
            raise ValueError("needs `secret` or `secret_env`")
        if self.secret_env is not None and self.secret is None:
            value = os.environ.get(self.secret_env)
            if not value:
                raise ValueError(f"environment variable {self.secret_env} is not set")
            self.secret = SecretStr(value)
        return self


class _LifetimesModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access_ttl_seconds: int = Field(default=15 * 60, ge=60, le=24 * 3600)
    refresh_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=3600, le=365 * 24 * 3600)


class _TokensModel(_LifetimesModel):
    """Defaults, and optional ``[tokens.<app kind>]`` tables overriding them per kind."""

    refresh_reuse_grace_seconds: int = Field(default=30, ge=0, le=300)
    miniprogram: _LifetimesModel | None = None
    official_account: _LifetimesModel | None = None
    website: _LifetimesModel | None = None
    mobile_app: _LifetimesModel | None = None

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
    registrations_per_hour: int = Field(default=20, ge=1, le=1_000_000)  # per client address


class AccountsModel(BaseModel):
    """People's rights: deletion's cooling-off, re-authentication, username reservation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deletion_grace_days: int = Field(default=0, ge=0, le=90)
    reauthentication_seconds: int = Field(default=300, ge=0, le=24 * 3600)
    username_reservation_days: int = Field(default=30, ge=0, le=3650)
    purge_interval_seconds: float = Field(default=3600.0, gt=0)


class AuditModel(BaseModel):
    """How long audit events are kept (``gateway audit prune``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retention_days: int = Field(default=180, ge=1, le=3650)


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


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    apps: list[_AppModel] = Field(default_factory=list)
    tokens: _TokensModel = Field(default_factory=_TokensModel)
    passwords: PasswordsModel = Field(default_factory=PasswordsModel)
    throttle: ThrottleModel = Field(default_factory=ThrottleModel)
    partners: list[PartnerModel] = Field(default_factory=list)
    accounts: AccountsModel = Field(default_factory=AccountsModel)
    audit: AuditModel = Field(default_factory=AuditModel)


SERVE_WORKERS_ENV = "GATEWAY_SERVE_WORKERS"
"""Set by ``gateway serve`` for its workers: how many processes serve this database (the token
cache needs a broadcast that all of them hear: Redis or PostgreSQL, else one process)."""


class Settings(BaseSettings):
    """Process settings; every name is ``GATEWAY_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    database_url: str | None = None
    redis_url: str | None = None
    wechat_api_base: str | None = None
    wechat_open_base: str = "https://open.weixin.qq.com"
    config: Path | None = None
    secret_key: SecretStr | None = None
    signing_keys: Path | None = None
    introspection: bool = True
    code_cache_seconds: float = Field(default=60.0, ge=0, le=300)
    wechat_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    wechat_concurrency: int = Field(default=64, ge=1, le=1000)  # calls on the wire per worker
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    cors_origins: str = ""  # comma-separated origins of websites calling /graphql from a browser
    metrics_token: SecretStr | None = Field(default=None, min_length=16)  # bearer for /metrics
    body_timeout_seconds: float = Field(default=10.0, gt=0, le=300)  # a whole request body
    limit_concurrency: int = Field(default=1000, ge=1)  # connections per worker, then 503
    # GraphQL requests running at once per worker; the others wait their turn (gateway.limits)
    max_in_progress: int = Field(default=128, ge=1)
    trusted_proxies: str = ""  # comma-separated addresses/CIDRs whose X-Forwarded-For is believed
    db_pool_size: int = Field(default=20, ge=1, le=500)
    # beyond the pool, connections opened for a burst and closed on check-in (0: wait instead)
    db_max_overflow: int = Field(default=0, ge=0, le=500)
    max_query_depth: int = Field(default=12, ge=2)
    max_aliases: int = Field(default=15, ge=1)
    log_level: str = Field(default="INFO", pattern=r"^(?i:debug|info|warning|error)$")
    log_format: str | None = Field(default=None, pattern=r"^(json|text)$")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        from gateway.addresses import parse_networks

        parse_networks(value)  # ValueError names the entry
        return value

    @property
    def effective_log_format(self) -> str:
        """JSON for deployments; plain text for the sandbox a newcomer reads in a terminal."""
        return self.log_format or ("json" if self.config else "text")


@dataclass(frozen=True)
class GatewayConfig:
    """The validated whole: settings, apps and the derived mode."""

    settings: Settings
    apps: tuple[AppConfig, ...]
    tokens: TokenLifetimes
    sandbox: bool
    passwords: PasswordsModel = field(default_factory=PasswordsModel)
    throttle: ThrottleModel = field(default_factory=ThrottleModel)
    partners: tuple[PartnerModel, ...] = ()
    accounts: AccountsModel = field(default_factory=AccountsModel)
    audit: AuditModel = field(default_factory=AuditModel)

    @property
    def database_url(self) -> str:
        return self.settings.database_url or f"sqlite+aiosqlite:///{DEFAULT_SQLITE_FILE}"

    @property
    def embedded_database(self) -> bool:
        return self.settings.database_url is None

    @property
    def wechat_api_base(self) -> str:
        if self.sandbox:
            return SANDBOX_WECHAT_API_BASE
        return self.settings.wechat_api_base or DEFAULT_WECHAT_API_BASE

    @property
    def data_dir(self) -> Path:
        """Where generated keys live: beside the SQLite file for the embedded default."""
        url = self.database_url
        match = re.match(r"^sqlite(?:\+\w+)?:///(.+)$", url)
        if match and match.group(1) != ":memory:":
            return Path(match.group(1)).resolve().parent
        return Path.cwd()

    def app(self, key: str) -> AppConfig | None:
        return next((a for a in self.apps if a.key == key), None)

    def app_kind(self, key: str) -> str | None:
        app = self.app(key)
        return app.kind.value if app else None


def _format_error(error: ValidationError, prefix: str) -> str:
    first = error.errors(include_input=False, include_url=False)[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    return f"{prefix}{loc}: {first['msg']}"


def _read_file(path: Path) -> _FileModel:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"GATEWAY_CONFIG: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"GATEWAY_CONFIG: {path} is not valid TOML: {exc}") from None
    try:
        return _FileModel.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, "GATEWAY_CONFIG")) from None


def _check_partners(file: _FileModel) -> None:
    keys = {a.key for a in file.apps}
    seen: set[str] = set()
    for index, partner in enumerate(file.partners):
        where = f"GATEWAY_CONFIG.partners[{index}]"
        if partner.client_id in seen:
            raise ConfigError(f"{where}.client_id: duplicate {partner.client_id!r}")
        seen.add(partner.client_id)
        unknown = set(partner.apps) - keys
        if unknown:
            raise ConfigError(f"{where}.apps: no such app {sorted(unknown)}")


def _check_unique(apps: list[_AppModel]) -> None:
    for attr in ("key", "appid"):
        seen: set[str] = set()
        for index, app in enumerate(apps):
            value = getattr(app, attr)
            if value in seen:
                raise ConfigError(f"GATEWAY_CONFIG.apps[{index}].{attr}: duplicate {value!r}")
            seen.add(value)


def load_settings() -> Settings:
    """The environment's settings; a bad one is named by its variable."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        name = "GATEWAY_" + str(first["loc"][0]).upper() if first["loc"] else "GATEWAY"
        raise ConfigError(f"{name}: {first['msg']}") from None


def load_config(settings: Settings | None = None) -> GatewayConfig:
    """Validate settings and the apps file; sandbox mode only when no app is configured."""
    settings = settings or load_settings()
    file = _read_file(settings.config) if settings.config else _FileModel()
    _check_unique(file.apps)
    _check_partners(file)
    apps = tuple(
        AppConfig(
            key=a.key,
            kind=a.kind,
            appid=a.appid,
            secret=a.secret or SecretStr(""),
            platform=a.platform,
            name=a.name or a.key,
        )
        for a in file.apps
    )
    if settings.config and not apps:
        raise ConfigError("GATEWAY_CONFIG.apps: at least one [[apps]] entry is required")
    tokens = file.tokens.lifetimes()
    sandbox = not apps
    if sandbox and settings.wechat_api_base:
        raise ConfigError(
            "GATEWAY_WECHAT_API_BASE: set, but no apps are configured (set GATEWAY_CONFIG)"
        )
    if sandbox:
        apps = sandbox_apps()
    return GatewayConfig(
        settings=settings,
        apps=apps,
        tokens=tokens,
        sandbox=sandbox,
        passwords=file.passwords,
        throttle=file.throttle,
        partners=tuple(file.partners),
        accounts=file.accounts,
        audit=file.audit,
    )


def sandbox_apps() -> tuple[AppConfig, ...]:
    """The demo apps: two mini-programs, an official account and a website under one open
    platform, and one mini-program outside it."""
    demo = [
        ("shop-mp", AppKind.MINIPROGRAM, "wxsandboxshop0001", "demo-platform", "Demo Shop"),
        ("club-mp", AppKind.MINIPROGRAM, "wxsandboxclub0002", "demo-platform", "Demo Club"),
        ("news-oa", AppKind.OFFICIAL_ACCOUNT, "wxsandboxnews0003", "demo-platform", "Demo News"),
        ("web", AppKind.WEBSITE, "wxsandboxweb00005", "demo-platform", "Demo Website"),
        ("solo-mp", AppKind.MINIPROGRAM, "wxsandboxsolo0004", None, "Solo (no platform)"),
    ]
    return tuple(
        AppConfig(key, kind, appid, SecretStr(f"sandbox-secret-{key}"), platform, name)
        for key, kind, appid, platform, name in demo
    )
