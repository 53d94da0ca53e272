"""Token lifetimes are configurable, per app kind (`[tokens.<kind>]` overrides `[tokens]`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.config import Settings, load_config
from tests.support.harness import APPS_TOML, MakeConfig, running


async def test_lifetimes_per_app_kind(
    database_url: str, tmp_path: Path, make_config: MakeConfig
) -> None:
    base = make_config(database_url)  # writes the keys file and sets TEST_CLUB_SECRET
    toml = tmp_path / "lifetimes.toml"
    toml.write_text(
        APPS_TOML
        + "\n[tokens]\naccess_ttl_seconds = 600\nrefresh_ttl_seconds = 86400\n"
        + "\n[tokens.miniprogram]\naccess_ttl_seconds = 120\nrefresh_ttl_seconds = 7200\n",
        encoding="utf-8",
    )
    config = load_config(Settings(**{**base.settings.model_dump(), "config": toml}))
    assert config.tokens.for_kind("miniprogram") == (120, 7200)
    assert config.tokens.for_kind("website") == (600, 86400)
    async with running(config) as gw:
        before = datetime.now(UTC)
        login = await gw.login("shop-mp", "alice")
    access = datetime.fromisoformat(login["expiresAt"]) - before
    refresh = datetime.fromisoformat(login["refreshExpiresAt"]) - before
    assert 110 <= access.total_seconds() <= 130
    assert 7190 <= refresh.total_seconds() <= 7210
