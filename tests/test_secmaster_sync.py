"""Secmaster against the simulator's REST: KV records, change events, history, CLI, REST."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from click.testing import CliRunner
from nats.aio.client import Client
from nats.js import JetStreamContext

from ssmd import subjects
from ssmd.cli.main import cli
from ssmd.runtime import RuntimeContext
from ssmd.secmaster.service import Secmaster
from ssmd.secmaster.store import kv_key, record_history, secmaster_kv
from ssmd.sim.kalshi import Fault, FaultKind, KalshiSim, SimConfig
from ssmd.transport.server import EmbeddedNats
from ssmd.transport.streams import ensure_streams

from .gateway_support import start_gateway, wait_for
from .support import make_environment


def _sim(tmp_path: Path) -> SimConfig:
    return SimConfig(
        markets=30, rate=0, paused=True, lifecycle_interval_s=0.5, data_dir=tmp_path / "sim"
    )


async def _rest_markets(rest_url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = ""
    async with aiohttp.ClientSession() as s:
        while True:
            async with s.get(f"{rest_url}/markets", params={"limit": "7", "cursor": cursor}) as r:
                page = await r.json()
            out.extend(page["markets"])
            cursor = page.get("cursor") or ""
            if not cursor:
                return out


async def test_sync_writes_kv_publishes_changes_and_keeps_history(
    tmp_path: Path, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext
) -> None:
    env = make_environment("test", connector={"restRatePerS": 200})
    await ensure_streams(js, env)
    events: list[dict[str, Any]] = []

    async def on_meta(msg: Any) -> None:
        events.append(orjson.loads(msg.data))

    await nc.subscribe(subjects.meta_wildcard("test", "kalshi"), cb=on_meta)
    async with KalshiSim(_sim(tmp_path)) as sim:
        sim.inject(Fault(FaultKind.REST_429, count=2))  # retried, nothing dropped
        ctx = RuntimeContext(env=env, nats_url=nats_server.url, feed_rest_url=sim.rest_url)
        sm = Secmaster(ctx, interval=3600)
        await sm.start()
        try:
            await asyncio.wait_for(sm.synced.wait(), 20)
            truth = {m["ticker"]: m for m in await _rest_markets(sim.rest_url)}
            assert set(sm.store.markets) == set(truth)
            assert sm.last is not None and sm.last.created == len(truth)
            await wait_for(lambda: len(events) == len(truth), 10, "one event per market")
            for t, m in truth.items():
                rec = sm.store.markets[t]
                assert rec["status"] == m["status"] and rec["close_time"] == m["close_time"]
                assert rec["event_ticker"] == m["event_ticker"] and rec["category"]
            # Nothing changed: nothing written, no events.
            again = await sm.sync()
            assert again.created == again.updated == 0 and again.unchanged == len(truth)
            # The exchange moves on (lifecycle: determine, pause, close-date change, open).
            await sim.step(4000)
            third = await sm.sync()
            assert third.created + third.updated > 0
            changed = third.changed_tickers
            await wait_for(lambda: len(events) == len(truth) + len(changed), 10, "change events")
            updated = [e for e in events[len(truth) :] if e["kind"] == "updated"]
            assert updated and all(e["changes"] for e in updated)
            kv = await secmaster_kv(js, "test")
            hist = await record_history(js, "test", "market", updated[0]["ticker"])
            assert len(hist) == 2 and hist[1]["changes"] == updated[0]["changes"]
            assert hist[1]["revision"] == updated[0]["revision"]
            assert (await kv.get(kv_key("market", updated[0]["ticker"]))).revision == hist[1][
                "revision"
            ]
        finally:
            await sm.stop()

        # CLI against the same KV and the simulator's REST.
        env_file = tmp_path / "env.yaml"
        env_file.write_text(
            "apiVersion: ssmd.io/v1alpha1\nkind: Environment\nmetadata: {name: test}\n"
            f"spec: {{transport: {{url: '{nats_server.url}'}}}}\n"
        )
        runner = CliRunner()
        base = ["--env", str(env_file)]

        def run(*args: str) -> Any:
            r = runner.invoke(cli, list(args), catch_exceptions=False)
            return r

        r = await asyncio.to_thread(
            run, "market", "sync", *base, "--rest-url", sim.rest_url, "--json"
        )
        assert r.exit_code == 0, r.output
        assert orjson.loads(r.output)["created"] == 0
        r = await asyncio.to_thread(run, "market", "list", *base, "--status", "open", "--json")
        assert r.exit_code == 0, r.output
        listed = orjson.loads(r.output)
        assert listed and all(m["status"] == "active" for m in listed)
        some = listed[0]
        r = await asyncio.to_thread(
            run, "market", "list", *base, "--series", some["series_ticker"], "--json"
        )
        assert {m["series_ticker"] for m in orjson.loads(r.output)} == {some["series_ticker"]}
        r = await asyncio.to_thread(run, "market", "list", *base)
        assert r.exit_code == 0 and some["ticker"] in r.output
        r = await asyncio.to_thread(run, "market", "show", some["ticker"], *base, "--history")
        assert r.exit_code == 0 and "history" in r.output and "created" in r.output
        r = await asyncio.to_thread(run, "market", "show", "NOPE-1", *base)
        assert r.exit_code == 1 and "no market" in r.output

        # Gateway REST answers from the same KV.
        gw = await start_gateway(env, nats_server.url, tmp_path / "gw")
        try:
            await asyncio.wait_for(gw.store.loaded.wait(), 10)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{gw.http_url}/v1/markets", params={"status": "open"}) as r2:
                    body = await r2.json()
                assert {m["ticker"] for m in body["markets"]} == {m["ticker"] for m in listed}
                async with http.get(f"{gw.http_url}/v1/markets/{some['ticker']}") as r2:
                    one = await r2.json()
                assert one["status"] == some["status"] and one["title"] == some["title"]
                assert set(one) >= {
                    "price",
                    "orderbook",
                    "contract",
                    "data_quality",
                    "_links",
                    "_hints",
                }
                assert one["data_quality"]["source"] == "simulator"
                async with http.get(f"{gw.http_url}/v1/markets/NOPE") as r2:
                    assert r2.status == 404
                async with http.get(f"{gw.http_url}/v1/openapi.json") as r2:
                    doc = await r2.json()
                assert "/v1/markets/{ticker}/orderbook" in doc["paths"]
                async with http.get(f"{gw.http_url}/v1/meta/feeds") as r2:
                    assert (await r2.json())["feeds"][0]["secmaster_markets"] == len(
                        sm.store.markets
                    )
                async with http.get(f"{gw.http_url}/v1/meta/inventory") as r2:
                    assert r2.status == 200
                async with http.get(f"{gw.http_url}/v1/meta/gaps/other") as r2:
                    assert r2.status == 404
        finally:
            await gw.stop()
