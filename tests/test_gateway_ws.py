"""Gateway WebSocket behaviour with frames published to a real nats-server and real clients."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import aiohttp
from nats.js import JetStreamContext

from ssmd.spec import Environment
from ssmd.transport.server import EmbeddedNats

from .gateway_support import (
    WsClient,
    fixture_frames,
    prepare,
    publish_frames,
    start_gateway,
)

A, B, C = "KXBTCD-25DEC31-T100000", "INXD-25DEC31-B5000", "KXBTCD-25DEC31-T105000"
FINAL = {
    A: ({0.42: 120.0, 0.43: 100.0, 0.44: 55.0}, {0.54: 400.0, 0.55: 100.0}),
    B: ({0.18: 500.0, 0.19: 200.0}, {0.78: 250.0, 0.79: 180.0}),
    C: ({0.05: 1000.0}, {0.92: 250.0}),
}


def _asks(no: dict[float, float]) -> dict[float, float]:
    return {float(Decimal(1) - Decimal(str(p))): q for p, q in no.items()}


async def test_realtime_client_builds_the_fixture_books(
    nats_server: EmbeddedNats,
    js: JetStreamContext,
    env_factory: Callable[..., Environment],
    tmp_path: Path,
) -> None:
    env = env_factory()
    await prepare(js, env)
    gw = await start_gateway(env, nats_server.url, tmp_path)
    try:
        c = await WsClient.connect(f"{gw.url}/v1/stream?symbols={A},{B},{C}")
        await c.wait(lambda: bool(c.of("subscribed")), "subscribed")
        last = await publish_frames(js, "test", "kalshi", fixture_frames())
        await c.wait(lambda: gw.feed.last_seq >= last, "gateway caught up")
        await c.wait(
            lambda: all(
                c.books.get(t) == yes and c.asks.get(t) == _asks(no)
                for t, (yes, no) in FINAL.items()
            ),
            "client books equal the fixture's final books",
        )
        # Trades, tickers and lifecycle events reached the client too.
        assert c.of("trade", symbol=A) and c.of("ticker", symbol=B)
        assert c.of("lifecycle")
        await c.close()
    finally:
        await gw.stop()


async def test_bad_requests_get_error_events_and_the_socket_stays_open(
    nats_server: EmbeddedNats,
    js: JetStreamContext,
    env_factory: Callable[..., Environment],
    tmp_path: Path,
) -> None:
    env = env_factory()
    await prepare(js, env)
    gw = await start_gateway(env, nats_server.url, tmp_path)
    try:
        c = await WsClient.connect(f"{gw.url}/v1/stream")
        bad = [
            "not json",
            "[1,2]",
            {"action": "dance"},
            {"action": "subscribe"},
            {"action": "subscribe", "symbols": [A], "mode": "turbo"},
            {"action": "subscribe", "symbols": [A], "mode": "conflated", "interval_ms": 1},
            {"action": "unsubscribe", "symbols": "", "id": 7},
            {"action": "snapshot", "symbols": ["NOPE"], "id": 8},
        ]
        for req in bad:
            await c.send(req)
        await c.wait(lambda: len(c.of("error")) == len(bad), "one error per bad request")
        assert c.of("error", id=7) and c.of("error", id=8, code="not_found")
        # Still open and usable.
        await c.send({"action": "subscribe", "symbols": [A], "id": 9})
        await c.wait(lambda: bool(c.of("subscribed", id=9)), "subscribe after errors")
        assert not c.closed.is_set()
        await c.close()
    finally:
        await gw.stop()


async def test_inventory_reads_the_archive_manifests(
    nats_server: EmbeddedNats,
    js: JetStreamContext,
    env_factory: Callable[..., Environment],
    tmp_path: Path,
) -> None:
    from ssmd.archiver.manifest import DayManifest, FileEntry

    root = tmp_path / "archive"
    day = root / "kalshi" / "2026-01-01"
    day.mkdir(parents=True)
    f = FileEntry(
        name="0000.jsonl.zst",
        start="2026-01-01T00:00:00Z",
        end="2026-01-01T00:15:00Z",
        start_ns=0,
        end_ns=1,
        records=10,
        bytes=100,
        sha256="0" * 64,
        nats_start_seq=1,
        nats_end_seq=10,
    )
    m = DayManifest(feed="kalshi", date="2026-01-01", files=[f], records=10, bytes=100)
    (day / "manifest.json").write_bytes(m.to_json())
    env = env_factory(storage={"local": {"path": str(root)}})
    await prepare(js, env)
    gw = await start_gateway(env, nats_server.url, tmp_path)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{gw.http_url}/v1/meta/inventory") as r,
        ):
            body = await r.json()
        (row,) = body["inventory"]
        assert row["date"] == "2026-01-01" and row["records"] == 10 and row["files"] == 1
    finally:
        await gw.stop()
