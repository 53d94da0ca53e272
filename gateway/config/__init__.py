"""Settings from the environment and apps from the TOML file named by ``GATEWAY_CONFIG``.

Everything here is validated once at start-up, so that a bad configuration stops the
process with one line naming the field, and never leaks a secret into that line.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.config.sections import (
    AccountsModel,
    ApiModel,
    AppConfig,
    AppKind,
    AppModel,
    AuditModel,
    ConfigError,
    EventsModel,
    FileModel,
    PartnerModel,
    PasswordsModel,
    PerformanceModel,
    ProfileModel,
    SmsModel,
    ThrottleModel,
    TokenLifetimes,
    owasp_memory_floor_kib,
)
from gateway.config.web import AdminModel, I18nModel, WebModel, WebScanModel
from gateway.webhook_urls import RefusedUrl, UrlPolicy

__all__ = [
    "DEFAULT_SQLITE_FILE",
    "DEFAULT_WECHAT_API_BASE",
    "SANDBOX_WECHAT_API_BASE",
    "SERVE_WORKERS_ENV",
    "AccountsModel",
    "AdminModel",
    "ApiModel",
    "AppConfig",
    "AppKind",
    "AuditModel",
    "ConfigError",
    "EventsModel",
    "GatewayConfig",
    "I18nModel",
    "PartnerModel",
    "PasswordsModel",
    "PerformanceModel",
    "ProfileModel",
    "Settings",
    "SmsModel",
    "ThrottleModel",
    "TokenLifetimes",
    "WebModel",
    "WebScanModel",
    "load_config",
    "load_settings",
    "owasp_memory_floor_kib",
    "sandbox_apps",
]

DEFAULT_WECHAT_API_BASE = "https://api.weixin.qq.com"
SANDBOX_WECHAT_API_BASE = "http://wechat-sandbox"
DEFAULT_SQLITE_FILE = "gateway.db"


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
    # fields marked expensive (personalData) one request may resolve; the rest answer
    # TooExpensiveError (gateway.api.cost)
    max_expensive_fields: int = Field(default=1, ge=1, le=100)
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
    events: EventsModel = field(default_factory=EventsModel)
    profile: ProfileModel = field(default_factory=ProfileModel)
    api: ApiModel = field(default_factory=ApiModel)
    performance: PerformanceModel = field(default_factory=PerformanceModel)
    sms: SmsModel = field(default_factory=SmsModel)
    web: WebModel = field(default_factory=WebModel)
    web_scan: WebScanModel = field(default_factory=WebScanModel)
    i18n: I18nModel = field(default_factory=I18nModel)
    admin: AdminModel = field(default_factory=AdminModel)

    @property
    def trusted_documents_file(self) -> Path | None:
        """``[api] trusted_documents_file``, relative to the config file's folder."""
        path = self.api.trusted_documents_file
        if path is None or path.is_absolute() or self.settings.config is None:
            return path
        return self.settings.config.parent / path

    @property
    def sms_provider(self) -> str | None:
        """``[sms] provider``; the sandbox's in sandbox mode when unset; None: SMS is off."""
        return self.sms.provider or ("sandbox" if self.sandbox else None)

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

    @property
    def webhook_policy(self) -> UrlPolicy:
        """Where partners' webhooks may go: loopback in sandbox mode or when allowed, private
        networks when allowed (``gateway.webhook_urls``)."""
        allowed = self.events
        return UrlPolicy(
            self.sandbox or allowed.allow_http_loopback, allowed.allow_private_networks
        )

    def app(self, key: str) -> AppConfig | None:
        return next((a for a in self.apps if a.key == key), None)

    def app_kind(self, key: str) -> str | None:
        app = self.app(key)
        return app.kind.value if app else None


def _format_error(error: ValidationError, prefix: str) -> str:
    first = error.errors(include_input=False, include_url=False)[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    return f"{prefix}{loc}: {first['msg']}"


def _read_file(path: Path) -> FileModel:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"GATEWAY_CONFIG: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"GATEWAY_CONFIG: {path} is not valid TOML: {exc}") from None
    try:
        return FileModel.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, "GATEWAY_CONFIG")) from None


def _check_partners(file: FileModel) -> None:
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
        _check_webhook(file, partner.webhook_url, f"{where}.webhook_url")


def _check_webhook(file: FileModel, url: str | None, where: str) -> None:
    """What can be said of a config partner's webhook URL without DNS (every delivery checks
    the rest on the addresses it resolves)."""
    if url is None:
        return
    allowed = file.events
    try:
        UrlPolicy(allowed.allow_http_loopback, allowed.allow_private_networks).form(url)
    except RefusedUrl as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _check_unique(apps: list[AppModel]) -> None:
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
    file = _read_file(settings.config) if settings.config else FileModel()
    _check_unique(file.apps)
    _check_partners(file)
    apps = _apps(settings, file)
    return GatewayConfig(
        settings=settings,
        apps=apps or sandbox_apps(),
        tokens=file.tokens.lifetimes(),
        sandbox=not apps,
        passwords=file.passwords,
        throttle=file.throttle,
        partners=tuple(file.partners),
        accounts=file.accounts,
        audit=file.audit,
        events=file.events,
        profile=file.profile,
        api=file.api,
        performance=file.performance,
        sms=file.sms,
        web=file.web,
        web_scan=file.web_scan,
        i18n=file.i18n,
        admin=file.admin,
    )


def _apps(settings: Settings, file: FileModel) -> tuple[AppConfig, ...]:
    """The configured apps; none means sandbox mode, which a config file or a real WeChat
    base URL rules out (either one without apps is a mistake, never a quiet sandbox)."""
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
    if not apps and settings.wechat_api_base:
        raise ConfigError(
            "GATEWAY_WECHAT_API_BASE: set, but no apps are configured (set GATEWAY_CONFIG)"
        )
    return apps


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
