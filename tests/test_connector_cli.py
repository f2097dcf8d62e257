"""The connector's operational surface: metrics + probes, status in KV, `ssmd status`,
`ssmd dlq list|replay|purge`, `ssmd connector` argument errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
from click.testing import CliRunner, Result
from nats.aio.client import Client
from nats.js import JetStreamContext

from ssmd import subjects
from ssmd.cli.main import cli
from ssmd.connector.dlq import dead_letter
from ssmd.sim.kalshi import Fault, FaultKind, SimConfig
from ssmd.transport.server import EmbeddedNats

from .connector_support import rig, stream_msgs, until


async def _invoke(*args: str) -> Result:
    # The CLI runs its own event loop: keep it off the test's loop.
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def test_metrics_status_and_dlq_commands(
    tmp_path: Path, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext
) -> None:
    cfg = SimConfig(markets=5, rate=500, lifecycle_interval_s=0, data_dir=tmp_path / "sim")
    async with rig(tmp_path, nats_server.url, sim=cfg, metrics_port=0) as (sim, c):
        await until(lambda: sum(s.frames for s in c.shards) > 100, 10, "frames")
        sim.inject(Fault(FaultKind.MALFORMED))
        sim.inject(Fault(FaultKind.UNKNOWN_TYPE))
        await until(lambda: c.stats.dlq >= 2, 10, "dead letters")
        assert c.metrics is not None and c.metrics.port
        base = f"http://127.0.0.1:{c.metrics.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/healthz") as r:
                assert r.status == 200
            async with http.get(base + "/readyz") as r:
                assert r.status == 200
            async with http.get(base + "/metrics") as r:
                text = await r.text()
        assert (
            'ssmd_connector_messages_received_total{feed="kalshi",type="orderbook_delta"}' in text
        )
        for name in (
            "ssmd_connector_messages_published_total",
            "ssmd_connector_lag_seconds_bucket",
            "ssmd_connector_errors_total",
            "ssmd_connector_in_flight",
            "ssmd_connector_spill_depth",
            "ssmd_connector_reconnects_total",
        ):
            assert name in text
        assert c.publisher is not None
        await until(lambda: c.publisher is not None and c.publisher.pending == 0, 10, "published")

        target = ["--nats-url", nats_server.url, "--name", "test"]
        res = await _invoke("status", *target, "--json")
        assert res.exit_code == 0, res.output
        doc = json.loads(res.output)["connector"]
        assert doc["source"] == "simulator" and doc["markets"] == len(c.markets)
        assert doc["shards"] == {"0": len(c.markets)} and doc["connections"][0]["connected"]
        res = await _invoke("status", *target)
        assert res.exit_code == 0 and "connector" in res.output

        res = await _invoke(
            "dlq", "list", *target, "--json", "--component", "connector", "--since", "1h"
        )
        assert res.exit_code == 0, res.output
        rows = [json.loads(line) for line in res.output.splitlines()]
        assert len(rows) == 2 and {r["component"] for r in rows} == {"connector"}
        res = await _invoke("dlq", "list", *target)
        assert res.exit_code == 0 and "dead letters of test" in res.output
        unknown = next(r for r in rows if "unknown" in r["error"])
        res = await _invoke("dlq", "replay", *target, "--id", str(unknown["id"]))
        assert res.exit_code == 1 and "still unknown" in res.output

    # A frame that is fine now (e.g. after a fix): replay publishes it and clears the entry.
    frame = b'{"type":"trade","sid":3,"msg":{"market_ticker":"KX-1","trade_id":"t1","ts_ms":1}}'
    doc = dead_letter(
        frame, "boom", component="connector", conn="c9", recv_ns=5, env="test", feed="kalshi"
    )
    ack = await js.publish(subjects.dlq_subject("test", "connector"), doc)
    res = await _invoke("dlq", "replay", *target, "--id", str(ack.seq))
    assert res.exit_code == 0, res.output
    replayed = await stream_msgs(
        js, "TEST_KALSHI", subjects.json_subject("test", "kalshi", "trade", "KX-1")
    )
    assert [m.data for m in replayed] == [frame] and replayed[0].headers["Ssmd-Conn"] == "c9"
    res = await _invoke("dlq", "replay", *target, "--id", str(ack.seq))
    assert res.exit_code == 1 and "no dead letter" in res.output

    res = await _invoke("dlq", "purge", *target, "--older-than", "0s")
    assert res.exit_code == 0 and "purged 2" in res.output, res.output
    res = await _invoke("dlq", "list", *target, "--json")
    assert res.exit_code == 0 and res.output.strip() == ""


async def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    res = await _invoke("dlq", "list")
    assert res.exit_code == 1 and res.output.startswith("error: give --env FILE")
    res = await _invoke(
        "dlq", "purge", "--nats-url", "nats://127.0.0.1:1", "--name", "x", "--older-than", "soon"
    )
    assert res.exit_code == 1 and "--older-than" in res.output
    env_file = tmp_path / "env.yaml"
    env_file.write_text(
        "apiVersion: ssmd.io/v1alpha1\nkind: Environment\nmetadata: {name: t}\nspec: {}\n"
    )
    res = await _invoke("connector", "--env", str(env_file), "--nats-url", "nats://127.0.0.1:1")
    assert (
        res.exit_code == 1 and "'sim'" in res.output and len(res.output.strip().splitlines()) == 1
    )
    res = await _invoke("status", "--nats-url", "nats://127.0.0.1:1", "--name", "t")
    assert res.exit_code == 1 and res.output.startswith("error: cannot reach NATS")
