"""Bad configuration stops start-up with one line that names the field and never a secret."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gateway.config import DEFAULT_WECHAT_API_BASE, ConfigError, Settings, load_config
from gateway.keyfiles import SECRET_FILE, SIGNING_FILE, load_secrets
from gateway.sessions.keys import SigningKeys, new_key, write_keys_file
from tests.support.cli import clean_environ, run_gateway_in
from tests.support.harness import Harness

SECRET = "s3cr3t-do-not-print-7f3a9c"
UNSET_VAR = "TEST_SURELY_UNSET_WECHAT_SECRET"
GOOD_SECRET_KEY = "prod-secret-key-0123456789-abcdefghijklmnop"


def _app(key: str, appid: str, **fields: str) -> str:
    lines = [f'key = "{key}"', 'kind = "miniprogram"', f'appid = "{appid}"']
    lines += [f'{name} = "{value}"' for name, value in fields.items()]
    return "[[apps]]\n" + "\n".join(lines) + "\n"


GOOD = _app("shop-mp", "wxshop0001", secret=SECRET)

# (id, file content, what the one line must name)
BAD_FILES = [
    ("unknown-kind", GOOD.replace('"miniprogram"', '"mini-program"'), "apps[0].kind"),
    ("missing-secret", GOOD + _app("club-mp", "wxclub0002"), ("apps[1]", "secret_env")),
    (
        "secret-env-unset",
        GOOD + _app("club-mp", "wxclub0002", secret_env=UNSET_VAR),
        ("apps[1]", UNSET_VAR),
    ),
    ("duplicate-key", GOOD + _app("shop-mp", "wxother0002", secret=SECRET), "apps[1].key"),
    ("duplicate-appid", GOOD + _app("club-mp", "wxshop0001", secret=SECRET), "apps[1].appid"),
    ("invalid-toml", GOOD.replace(f'"{SECRET}"', SECRET), "GATEWAY_CONFIG"),
    ("unclosed-string", GOOD.replace(f'"{SECRET}"', f'"{SECRET}'), "GATEWAY_CONFIG"),
    ("bad-key-pattern", GOOD.replace('"shop-mp"', '"Shop MP"'), "apps[0].key"),
    ("unknown-field", GOOD.replace("secret =", "secert ="), "apps[0].secert"),
    ("no-apps", f'[tokens]\naccess_ttl_seconds = 600\n# "{SECRET}"\n', "GATEWAY_CONFIG.apps"),
    ("bad-token-ttl", GOOD + "[tokens]\naccess_ttl_seconds = 5\n", "tokens.access_ttl_seconds"),
    # fewer passes need more memory: 4 passes over 7 MiB is below OWASP's table (9 MiB)
    (
        "argon2-below-owasp",
        GOOD + "[passwords]\ntime_cost = 4\nmemory_kib = 7168\n",
        ("passwords", "9216"),
    ),
    (
        "argon2-one-pass",
        GOOD + "[passwords]\ntime_cost = 1\nmemory_kib = 19456\n",
        ("passwords", "47104"),
    ),
    (
        "fast-paths-not-a-bool",
        GOOD + '[performance]\nfast_paths = "sometimes"\n',
        "performance.fast_paths",
    ),
    ("performance-unknown", GOOD + "[performance]\nfastpaths = false\n", "performance.fastpaths"),
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No GATEWAY_* variable from the outside world; the working directory is a scratch dir."""
    for name in list(os.environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv(UNSET_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _one_line_naming(message: str, field: str | tuple[str, ...]) -> None:
    assert message.strip(), "empty error message"
    assert "\n" not in message.strip(), f"more than one line: {message!r}"
    for part in (field,) if isinstance(field, str) else field:
        assert part in message, f"{part!r} not named in {message!r}"
    assert SECRET not in message
    assert "Traceback" not in message


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, without the secret this module's configurations name but never set."""
    environ = {k: v for k, v in clean_environ(**env).items() if k != UNSET_VAR}
    return run_gateway_in(environ, *args, cwd=cwd)


def _assert_refused(result: subprocess.CompletedProcess[str], field: str | tuple[str, ...]) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    _one_line_naming(result.stderr, field)
    assert result.stderr.startswith("gateway: configuration error: ")
    assert SECRET not in result.stdout


# --- through load_config ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_apps_file_is_one_line_naming_the_field(
    clean_env: Path, text: str, field: str | tuple[str, ...]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(Settings(config=_config_file(clean_env, text)))
    _one_line_naming(str(caught.value), field)


def test_fast_paths_are_on_unless_the_file_turns_them_off(clean_env: Path) -> None:
    assert load_config(Settings(config=_config_file(clean_env, GOOD))).performance.fast_paths
    off = GOOD + "[performance]\nfast_paths = false\n"
    assert not load_config(Settings(config=_config_file(clean_env, off))).performance.fast_paths


@pytest.mark.parametrize("target", ["missing.toml", "."], ids=["missing", "directory"])
def test_unreadable_apps_file_names_gateway_config(clean_env: Path, target: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(Settings(config=clean_env / target))
    _one_line_naming(str(caught.value), "GATEWAY_CONFIG")
    assert "cannot read" in str(caught.value)


def test_secret_env_is_read_from_the_environment(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(UNSET_VAR, "club-secret-from-env")
    text = GOOD + _app("club-mp", "wxclub0002", secret_env=UNSET_VAR)
    config = load_config(Settings(config=_config_file(clean_env, text)))
    club = config.app("club-mp")
    assert club is not None
    assert club.secret.get_secret_value() == "club-secret-from-env"
    assert "club-secret-from-env" not in repr(club)
    assert SECRET not in repr(config.apps)


def test_empty_secret_is_refused(clean_env: Path) -> None:
    text = GOOD + _app("club-mp", "wxclub0002", secret="")
    with pytest.raises(ConfigError) as caught:
        load_config(Settings(config=_config_file(clean_env, text)))
    _one_line_naming(str(caught.value), ("apps[1]", "secret"))


def test_wechat_api_base_without_apps_is_refused(clean_env: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(Settings(wechat_api_base="http://wechat.example"))
    _one_line_naming(str(caught.value), "GATEWAY_WECHAT_API_BASE")


def test_bad_setting_from_the_environment_is_a_config_error(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_MAX_BODY_BYTES", "12")
    with pytest.raises(ConfigError) as caught:
        load_config()
    _one_line_naming(str(caught.value), "GATEWAY")
    assert "max_body_bytes" in str(caught.value).lower()


# --- production-style settings: secrets must be given, never generated -------------------


@pytest.fixture
def prod_settings(clean_env: Path) -> dict[str, Any]:
    return {
        "database_url": "postgresql+asyncpg://gateway@127.0.0.1:1/gateway",
        "config": _config_file(clean_env, GOOD),
    }


def _keys_file(path: Path) -> Path:
    write_keys_file(path, SigningKeys([new_key()]))
    return path


def _refused_by_load_secrets(settings: Settings, field: str, clean_env: Path) -> str:
    config = load_config(settings)
    assert not config.embedded_database
    with pytest.raises(ConfigError) as caught:
        load_secrets(config)
    message = str(caught.value)
    _one_line_naming(message, field)
    assert not (clean_env / SECRET_FILE).exists(), "generated a secret key in production"
    assert not (clean_env / SIGNING_FILE).exists(), "generated signing keys in production"
    return message


def test_production_without_signing_keys_is_refused(
    prod_settings: dict[str, Any], clean_env: Path
) -> None:
    settings = Settings(**prod_settings, secret_key=GOOD_SECRET_KEY)
    _refused_by_load_secrets(settings, "GATEWAY_SIGNING_KEYS", clean_env)


def test_production_without_secret_key_is_refused(
    prod_settings: dict[str, Any], clean_env: Path
) -> None:
    settings = Settings(**prod_settings, signing_keys=_keys_file(clean_env / "keys.json"))
    _refused_by_load_secrets(settings, "GATEWAY_SECRET_KEY", clean_env)


def test_production_with_a_short_secret_key_is_refused_without_echoing_it(
    prod_settings: dict[str, Any], clean_env: Path
) -> None:
    short = "tooshort-but-secret"
    settings = Settings(
        **prod_settings, secret_key=short, signing_keys=_keys_file(clean_env / "keys.json")
    )
    message = _refused_by_load_secrets(settings, "GATEWAY_SECRET_KEY", clean_env)
    assert short not in message


@pytest.mark.parametrize(
    "content", [None, "not json", '{"keys": []}'], ids=["missing", "junk", "empty"]
)
def test_production_with_a_bad_signing_keys_file_is_refused(
    prod_settings: dict[str, Any], clean_env: Path, content: str | None
) -> None:
    path = clean_env / "keys.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    settings = Settings(**prod_settings, secret_key=GOOD_SECRET_KEY, signing_keys=path)
    _refused_by_load_secrets(settings, "GATEWAY_SIGNING_KEYS", clean_env)


def test_production_with_everything_given_loads_those_secrets(
    prod_settings: dict[str, Any], clean_env: Path
) -> None:
    path = _keys_file(clean_env / "keys.json")
    settings = Settings(**prod_settings, secret_key=GOOD_SECRET_KEY, signing_keys=path)
    secrets = load_secrets(load_config(settings))
    assert secrets.secret_key == GOOD_SECRET_KEY
    assert secrets.signing_keys_path == path
    assert not (clean_env / SECRET_FILE).exists()


# --- through the real CLI ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_cli_serve_refuses_a_bad_apps_file(
    tmp_path: Path, text: str, field: str | tuple[str, ...]
) -> None:
    path = _config_file(tmp_path, text)
    _assert_refused(_cli("serve", cwd=tmp_path, GATEWAY_CONFIG=str(path)), field)


def test_cli_serve_refuses_an_unreadable_apps_file(tmp_path: Path) -> None:
    result = _cli("serve", cwd=tmp_path, GATEWAY_CONFIG=str(tmp_path / "nope.toml"))
    _assert_refused(result, "GATEWAY_CONFIG")


def test_cli_serve_refuses_wechat_api_base_without_apps(tmp_path: Path) -> None:
    result = _cli("serve", cwd=tmp_path, GATEWAY_WECHAT_API_BASE="http://wechat.example")
    _assert_refused(result, "GATEWAY_WECHAT_API_BASE")
    assert not (tmp_path / "gateway.db").exists()


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({}, "GATEWAY_SIGNING_KEYS"),
        ({"GATEWAY_SECRET_KEY": GOOD_SECRET_KEY}, "GATEWAY_SIGNING_KEYS"),
        ({"GATEWAY_SIGNING_KEYS": "keys.json"}, "GATEWAY_SECRET_KEY"),
        ({"GATEWAY_SIGNING_KEYS": "keys.json", "GATEWAY_SECRET_KEY": SECRET}, "GATEWAY_SECRET_KEY"),
    ],
    ids=["nothing", "no-signing-keys", "no-secret-key", "short-secret-key"],
)
def test_cli_serve_refuses_production_without_secrets(
    tmp_path: Path, extra: dict[str, str], field: str
) -> None:
    _keys_file(tmp_path / "keys.json")
    result = _cli(
        "serve",
        cwd=tmp_path,
        GATEWAY_CONFIG=str(_config_file(tmp_path, GOOD)),
        GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'prod.db'}",
        **extra,
    )
    _assert_refused(result, field)
    assert not (tmp_path / SECRET_FILE).exists()
    assert not (tmp_path / SIGNING_FILE).exists()


def test_cli_names_the_environment_variable_of_a_bad_setting(tmp_path: Path) -> None:
    result = _cli("serve", cwd=tmp_path, GATEWAY_MAX_BODY_BYTES="12")
    _assert_refused(result, "GATEWAY_MAX_BODY_BYTES")


# --- sandbox mode is off whenever apps are configured ------------------------------------


def test_configured_apps_mean_no_sandbox(clean_env: Path) -> None:
    config = load_config(Settings(config=_config_file(clean_env, GOOD)))
    assert config.sandbox is False
    assert [a.key for a in config.apps] == ["shop-mp"]
    assert [a.appid for a in config.apps] == ["wxshop0001"]
    assert config.wechat_api_base == DEFAULT_WECHAT_API_BASE


async def test_no_sandbox_routes_when_apps_are_configured(gw: Harness) -> None:
    assert gw.config.sandbox is False
    for method in ("GET", "POST"):
        answer = await gw.client.request(method, "/sandbox/code?app=shop-mp&user=alice")
        assert answer.status_code == 404, answer.text
    answer = await gw.client.post("/sandbox/wechat/sandbox/codes", json={"appid": "x"})
    assert answer.status_code == 404
    body = await gw.gql("{ sandbox apps { key } }")
    assert body["data"]["sandbox"] is False
    assert [a["key"] for a in body["data"]["apps"]] == [a.key for a in gw.config.apps]
    page = await gw.client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "SANDBOX MODE" not in page.text
