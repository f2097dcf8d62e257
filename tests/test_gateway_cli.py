"""The container entrypoints: `ssmd gateway` and `ssmd secmaster` as real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
from nats.js import JetStreamContext

from ssmd.secmaster.store import MarketStore
from ssmd.sim.kalshi import KalshiSim, SimConfig
from ssmd.transport.server import EmbeddedNats

from .connector_support import until
from .support import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ssmd.cli.main",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT / "runtime")},
    )


async def test_gateway_and_secmaster_processes_serve_and_stop_cleanly(
    tmp_path: Path, nats_server: EmbeddedNats, js: JetStreamContext
) -> None:
    env_file = tmp_path / "env.yaml"
    env_file.write_text(
        "apiVersion: ssmd.io/v1alpha1\nkind: Environment\nmetadata: {name: test}\nspec: {}\n"
    )
    port = _free_port()
    async with KalshiSim(
        SimConfig(markets=5, rate=0, paused=True, data_dir=tmp_path / "sim")
    ) as sim:
        sm = await _spawn(
            "secmaster",
            "--env",
            str(env_file),
            "--nats-url",
            nats_server.url,
            "--rest-url",
            sim.rest_url,
        )
        gw = await _spawn(
            "gateway",
            "--env",
            str(env_file),
            "--nats-url",
            nats_server.url,
            "--port",
            str(port),
        )
        store = MarketStore()
        try:
            await store.start(js, "test")
            await until(lambda: len(store.markets) >= 5, 30, "secmaster to write markets")
            async with aiohttp.ClientSession() as http:
                body: dict[str, object] = {}
                for _ in range(300):
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/v1/markets") as r:
                            body = await r.json()
                            if body.get("total") == len(store.markets):
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.05)
                assert body.get("total") == len(store.markets)
        finally:
            await store.stop()
            for p in (gw, sm):
                if p.returncode is None:
                    p.send_signal(signal.SIGTERM)
            codes = [await asyncio.wait_for(p.wait(), 20) for p in (gw, sm)]
        assert codes == [0, 0]
        # A bad environment file is one line, not a traceback.
        bad = await _spawn("gateway", "--env", str(tmp_path / "missing.yaml"))
        _, err = await bad.communicate()
        assert bad.returncode == 1
        assert err.decode().count("\n") == 1 and err.startswith(b"error: ")
