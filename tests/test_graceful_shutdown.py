"""SIGTERM (a rolling deploy) lets in-flight requests finish before the process exits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.harness import APPS_TOML, LOGIN
from tests.support.processes import free_port, wait_ready


async def test_sigterm_finishes_in_flight_logins(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(APPS_TOML, encoding="utf-8")
    wechat_port, port = free_port(), free_port()
    env = {
        **os.environ,
        "TEST_CLUB_SECRET": "club-secret-0123456789",
        "GATEWAY_CONFIG": str(config),
        "GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        "GATEWAY_SECRET_KEY": "test-secret-key-0123456789-abcdefghijkl",
        "GATEWAY_SIGNING_KEYS": str(tmp_path / "keys.json"),
        "GATEWAY_WECHAT_API_BASE": f"http://127.0.0.1:{wechat_port}",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    gateway = [sys.executable, "-m", "gateway"]
    for command in (["keys", "rotate"], ["migrate"]):
        await asyncio.to_thread(
            subprocess.run, [*gateway, *command], env=env, check=True, capture_output=True
        )
    # WeChat answers after a second, so the logins are in flight when SIGTERM arrives
    emulator = subprocess.Popen(  # noqa: ASYNC220  (a server for the test, not awaited)
        [*gateway, "sandbox", "--port", str(wechat_port), "--latency-ms", "1000"], env=env
    )
    server = subprocess.Popen([*gateway, "serve", "--port", str(port)], env=env)  # noqa: ASYNC220
    try:
        await asyncio.to_thread(
            wait_ready, f"http://127.0.0.1:{wechat_port}/sandbox/stats", emulator, "emulator"
        )
        await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}/readyz", server, "gateway")
        async with httpx.AsyncClient(timeout=30) as client:
            codes = []
            for user in ("alice", "bob", "carol"):
                minted = await client.post(
                    f"http://127.0.0.1:{wechat_port}/sandbox/codes",
                    json={"appid": "wxtestshop000001", "user": user},
                )
                codes.append(minted.json()["code"])
            logins = [
                asyncio.create_task(
                    client.post(
                        f"http://127.0.0.1:{port}/graphql",
                        json={
                            "query": LOGIN,
                            "variables": {
                                "app": "shop-mp",
                                "code": code,
                                "client": {"platform": "ios"},
                            },
                        },
                    )
                )
                for code in codes
            ]
            stats = f"http://127.0.0.1:{wechat_port}/sandbox/stats"
            for _ in range(500):  # until all three are waiting on WeChat (bounded)
                calls = (await client.get(stats)).json()["calls"]
                if calls.get("/sns/jscode2session", 0) >= len(codes):
                    break
                await asyncio.sleep(0.02)
            server.send_signal(signal.SIGTERM)
            answers = await asyncio.gather(*logins)
        assert [a.status_code for a in answers] == [200, 200, 200]
        kinds = {a.json()["data"]["loginByCode"]["__typename"] for a in answers}
        assert kinds == {"LoginSuccess"}
        # uvicorn re-raises the signal once the in-flight requests are done
        assert await asyncio.to_thread(server.wait, 30) in (0, -signal.SIGTERM)
    finally:
        for proc in (server, emulator):
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=30)
