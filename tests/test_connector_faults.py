"""Exchange faults: seq gaps, closed and silent sockets, bad frames, dropped subscriptions."""

from __future__ import annotations

from pathlib import Path

import orjson
from nats.aio.client import Client
from nats.js import JetStreamContext

from ssmd import subjects
from ssmd.connector.dlq import frame_of
from ssmd.connector.service import Connector
from ssmd.sim.kalshi import Fault, FaultKind, SimConfig
from ssmd.transport.server import EmbeddedNats

from .connector_support import (
    frames_by_conn,
    gap_records,
    quiesce,
    rig,
    sim_logs,
    stream_msgs,
    until,
)


def _cfg(tmp_path: Path, **kw: object) -> SimConfig:
    base: dict[str, object] = {
        "markets": 8,
        "rate": 1000,
        "record_frames": True,
        "lifecycle_interval_s": 0,
        "data_dir": tmp_path / "sim",
    }
    base.update(kw)
    return SimConfig(**base)  # type: ignore[arg-type]


def _frames(c: Connector) -> int:
    return sum(s.frames for s in c.shards)


async def test_skip_seq_records_one_gap_and_rebaselines(
    tmp_path: Path, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext
) -> None:
    async with rig(tmp_path, nats_server.url, sim=_cfg(tmp_path)) as (sim, c):
        await until(lambda: _frames(c) > 200, 10, "frames")
        sim.inject(Fault(FaultKind.SKIP_SEQ))
        await until(lambda: c.stats.gaps.get("seq_gap", 0) >= 1, 10, "a seq gap")
        await until(lambda: _frames(c) > 600, 10, "more frames")
        await quiesce(sim, c, nc)
        gaps = await gap_records(js)
        assert [g["cause"] for g in gaps] == ["seq_gap"]
        g = gaps[0]
        assert g["received_seq"] == g["expected_seq"] + 1
        assert sorted(g["markets"]) == sorted(c.markets)  # every book of the sid is stale
        assert g["start_ns"] <= g["end_ns"] == g["detected_ns"]
        # Re-baselined: after the gap every market of the sid got a fresh snapshot.
        msgs = await stream_msgs(js, "TEST_KALSHI")
        after = [
            orjson.loads(m.data)
            for m in msgs
            if m.subject.startswith("test.kalshi.json.orderbook.")
        ]
        snaps = {
            f["msg"]["market_ticker"]
            for f in after
            if f["type"] == "orderbook_snapshot"
            and f["sid"] == g["sid"]
            and f["seq"] > g["received_seq"]
        }
        assert snaps == set(g["markets"])
        (sent,) = sim_logs(sim).values()
        (stored,) = frames_by_conn(msgs).values()
        assert stored == sent


async def test_closed_socket_reconnects_resubscribes_and_records_the_outage(
    tmp_path: Path, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext
) -> None:
    async with rig(tmp_path, nats_server.url, sim=_cfg(tmp_path)) as (sim, c):
        await until(lambda: _frames(c) > 200, 10, "frames")
        first = c.shards[0].conn_id
        sim.inject(Fault(FaultKind.CLOSE))
        await until(lambda: c.stats.gaps.get("disconnect", 0) >= 1, 10, "the outage gap")
        await until(lambda: len(c.shards[0].snapshot()["subscriptions"]) >= 4, 10, "resubscribed")
        await quiesce(sim, c, nc)
        (g,) = await gap_records(js)
        assert g["cause"] == "disconnect" and g["conn"] == first
        assert g["start_ns"] < g["end_ns"] and sorted(g["markets"]) == sorted(c.markets)
        assert c.shards[0].conn_id != first and c.stats.reconnects == 1
        got = frames_by_conn(await stream_msgs(js, "TEST_KALSHI"))
        logs = sim_logs(sim)
        assert len(logs) == 2
        old, new = logs[min(logs)], logs[max(logs)]
        assert got[first] == old[: len(got[first])]  # all that arrived, and the loss is the gap
        assert got[c.shards[0].conn_id] == new
        # The new subscription starts with a snapshot of every market.
        snaps = {
            orjson.loads(f)["msg"]["market_ticker"] for f in new if b'"orderbook_snapshot"' in f
        }
        assert snaps == c.markets


async def test_silent_socket_is_detected_as_a_stall(
    tmp_path: Path, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext
) -> None:
    async with rig(tmp_path, nats_server.url, sim=_cfg(tmp_path, ping_interval_s=60)) as (sim, c):
        await until(lambda: _frames(c) > 100, 10, "frames")
        first = c.shards[0].conn_id
        sim.inject(Fault(FaultKind.STALL))
        await until(lambda: c.stats.gaps.get("stall", 0) >= 1, 10, "the stall gap")
        sim.clear_faults()
        await quiesce(sim, c, nc)
        (g,) = await gap_records(js)
        assert g["cause"] == "stall" and g["conn"] == first
        assert g["start_ns"] < g["end_ns"]
        assert c.shards[0].connected and c.shards[0].conn_id != first


async def test_malformed_and_unknown_frames_go_to_the_dlq(
    tmp_path: Path, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext
) -> None:
    async with rig(tmp_path, nats_server.url, sim=_cfg(tmp_path)) as (sim, c):
        await until(lambda: _frames(c) > 100, 10, "frames")
        sim.inject(Fault(FaultKind.MALFORMED))
        sim.inject(Fault(FaultKind.UNKNOWN_TYPE))
        await until(lambda: c.stats.dlq >= 2, 10, "two dead letters")
        n = _frames(c)
        await until(lambda: _frames(c) > n + 100, 10, "frames after the bad ones")
        await quiesce(sim, c, nc)
        dlq = await stream_msgs(js, "TEST_DLQ")
        assert [m.subject for m in dlq] == [subjects.dlq_subject("test", "connector")] * 2
        docs = [orjson.loads(m.data) for m in dlq]
        assert {d["component"] for d in docs} == {"connector"}
        assert any("unknown frame type" in d["error"] for d in docs)
        assert any("sim_unknown_type" in frame_of(d).decode() for d in docs)
        (sent,) = sim_logs(sim).values()
        (stored,) = frames_by_conn(await stream_msgs(js, "TEST_KALSHI")).values()
        bad = {frame_of(d) for d in docs}
        assert stored == [f for f in sent if f not in bad]
        assert c.stats.gaps == {}


async def test_dropped_subscription_is_recorded_and_resubscribed(
    tmp_path: Path, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext
) -> None:
    async with rig(tmp_path, nats_server.url, sim=_cfg(tmp_path)) as (sim, c):
        await until(lambda: _frames(c) > 100, 10, "frames")
        sim.inject(Fault(FaultKind.ERROR_25))
        await until(lambda: c.stats.gaps.get("subscription_rejected", 0) >= 1, 10, "the gap")
        await until(
            lambda: "orderbook_delta" in c.shards[0]._chan_sid and not c.shards[0]._subscribing,
            10,
            "resubscribed",
        )
        await quiesce(sim, c, nc)
        (g,) = await gap_records(js)
        assert g["cause"] == "subscription_rejected" and g["channel"] == "orderbook_delta"
        assert sorted(g["markets"]) == sorted(c.markets)
        live = sim.connections()[0]["subscriptions"]
        book = [s for s in live if s["channel"] == "orderbook_delta"]
        assert len(book) == 1 and sorted(book[0]["markets"]) == sorted(c.markets)


async def test_duplicated_frames_are_not_stored_twice_under_one_seq(
    tmp_path: Path, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext
) -> None:
    async with rig(tmp_path, nats_server.url, sim=_cfg(tmp_path)) as (sim, c):
        await until(lambda: _frames(c) > 100, 10, "frames")
        sim.inject(Fault(FaultKind.DUPLICATE, count=5))
        n = _frames(c)
        await until(lambda: _frames(c) > n + 300, 10, "frames after the duplicates")
        await quiesce(sim, c, nc)
        (sent,) = sim_logs(sim).values()
        (stored,) = frames_by_conn(await stream_msgs(js, "TEST_KALSHI")).values()
        # A repeated seq is already stored under its Msg-Id; frames without seq are kept
        # as the exchange sent them (dedup only on identities that are unique).
        expected, seen = [], set()
        for f in sent:
            d = orjson.loads(f)
            key = (d.get("sid"), d.get("seq"))
            if d.get("seq") is not None and d["type"] not in ("ok", "unsubscribed") and key in seen:
                continue
            seen.add(key)
            expected.append(f)
        assert len(expected) < len(sent) or c.stats.duplicates_seq == 0
        assert stored == expected
        assert c.stats.gaps == {}
