"""The playground page and its self-hosted assets over HTTP (no browser: see
test_playground_browser.py for that)."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
from pathlib import Path

from gateway.playground import manifest
from tests.support.harness import Harness
from tests.support.sandbox import sandbox

ROOT = Path(__file__).resolve().parent.parent


def _urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def test_every_vendor_file_matches_its_manifest_hash() -> None:
    assert manifest.mismatches() == []
    names = {f.package for f in manifest.vendor_files()}
    assert names == {"react", "react-dom", "graphiql", "@graphiql/plugin-explorer"}
    for package in manifest.read_manifest()["packages"]:
        assert package["license"]
        assert package["integrity"].startswith("sha512-")
        assert (
            manifest.ASSETS / manifest.package_dir(package["name"], package["version"]) / "LICENSE"
        ).is_file()


def test_the_maintainer_script_checks_offline() -> None:
    script = ROOT / "scripts" / "refresh_playground_assets.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "match the manifest" in done.stdout


async def test_the_page_loads_only_versioned_assets_of_its_own_origin(gw: Harness) -> None:
    page = await gw.client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self';" in csp
    assert "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "unpkg" not in page.text
    assert "https://" not in page.text
    assert "<script>" not in page.text  # no inline script: every script has a src
    assert 'id="sandbox-panel"' not in page.text  # real apps: no sandbox panel
    urls = [u for u in _urls(page.text) if not u.startswith("data:")]
    assert len(urls) == 8
    for url in urls:
        assert url.startswith("/playground/assets/")
        assert re.match(
            r"/playground/assets/[a-z@/-]+@\d+\.\d+\.\d+/|/playground/assets/gateway-[0-9a-f]{12}/",
            url,
        )
        asset = await gw.client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert asset.headers["x-content-type-options"] == "nosniff"
        assert asset.headers["content-type"].startswith(("text/javascript", "text/css"))


async def test_assets_are_gzipped_when_asked_and_unknown_paths_are_404(gw: Harness) -> None:
    url = "/playground/assets/graphiql@3.9.0/graphiql.min.js"
    plain = await gw.client.get(url, headers={"accept-encoding": "identity"})
    squeezed = await gw.client.get(url, headers={"accept-encoding": "gzip"})
    assert squeezed.headers["content-encoding"] == "gzip"
    assert int(squeezed.headers["content-length"]) < len(plain.content) / 2
    assert gzip.decompress(await _raw(gw, url)) == plain.content
    for missing in ("graphiql@3.9.0/nope.js", "../manifest.py", "MANIFEST.json/x"):
        assert (await gw.client.get(f"/playground/assets/{missing}")).status_code == 404


async def _raw(gw: Harness, url: str) -> bytes:
    async with gw.client.stream("GET", url, headers={"accept-encoding": "gzip"}) as response:
        return b"".join([chunk async for chunk in response.aiter_raw()])


async def test_sandbox_mode_adds_the_panel_with_the_demo_apps(workdir: Path) -> None:
    async with sandbox() as gw:
        page = await gw.client.get("/graphql", headers={"accept": "text/html"})
    assert 'id="sandbox-panel"' in page.text
    assert 'data-sandbox="/sandbox"' in page.text
    for key in ("shop-mp", "club-mp", "news-oa", "web", "solo-mp"):
        assert f'<option value="{key}"' in page.text
    nonce = re.search(r'name="csp-nonce" content="([^"]+)"', page.text)
    assert nonce
    assert f"'nonce-{nonce.group(1)}'" in page.headers["content-security-policy"]
