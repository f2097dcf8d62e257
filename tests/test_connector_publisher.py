"""The connector's publisher against a real nats-server: ordering, exactly-once, spill, kill."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from nats.js import JetStreamContext

from ssmd import subjects
from ssmd.connector.publisher import OverflowGap, Publisher
from ssmd.connector.spill import Record, SpillFile, decode_records, encode_record
from ssmd.spec import Environment
from ssmd.transport.connect import connect
from ssmd.transport.server import EmbeddedNats
from ssmd.transport.streams import ensure_streams

from .support import until


def _rec(i: int, conn: str = "c1") -> Record:
    subject = subjects.json_subject("test", "kalshi", "orderbook", f"M{i % 3}")
    return Record(
        subject, b'{"type":"orderbook_delta","seq":%d}' % i, f"{conn}:1:{i}", 1_000 + i, conn
    )


async def _stream_msgs(
    js: JetStreamContext, stream: str
) -> list[tuple[str, bytes, dict[str, str]]]:
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        m = await js.get_msg(stream, seq)
        out.append((m.subject, m.data or b"", dict(m.headers or {})))
    return out


def test_spill_records_roundtrip(tmp_path: Path) -> None:
    recs = [_rec(i) for i in range(5)] + [Record("a.b", bytes(range(256)) * 10, "x:f1", 7, "x")]
    buf = b"".join(encode_record(r) for r in recs)
    got, used = decode_records(buf + buf[:10])  # a torn tail is not a record
    assert got == recs and used == len(buf)
    sf = SpillFile(tmp_path / "s.spill", 10_000)
    for r in recs[:3]:
        assert sf.append(r)
    assert sf.pop() == recs[0]
    sf.close()
    with open(tmp_path / "s.spill", "ab") as fh:
        fh.write(b"\x00\x01")  # a crash mid-write
    again = SpillFile(tmp_path / "s.spill", 10_000)
    assert [again.pop(), again.pop(), again.pop(), again.pop()] == [*recs[:3], None]
    assert not again.append(Record("a", b"x" * 20_000, "m", 1, "c"))  # over the limit


async def test_publishes_in_order_with_headers(
    tmp_path: Path,
    nats_server: EmbeddedNats,
    js: JetStreamContext,
    env_factory: Callable[..., Environment],
) -> None:
    await ensure_streams(js, env_factory("test"))
    stored: list[tuple[str, int]] = []
    pub = Publisher(
        nats_server.url,
        spill_path=tmp_path / "p.spill",
        spill_max_bytes=1 << 20,
        max_in_flight=64,
        on_stored=lambda rec, seq: stored.append((rec.msg_id, seq)),
    )
    await pub.start()
    recs = [_rec(i) for i in range(2000)]
    for r in recs:
        pub.submit(r)
    pub.submit(recs[5])  # a retried record: same Msg-Id, stored once
    assert await pub.wait_idle(20)
    await pub.close()
    msgs = await _stream_msgs(js, "TEST_KALSHI")
    assert [m[1] for m in msgs] == [r.payload for r in recs]
    assert msgs[7][2]["Nats-Msg-Id"] == "c1:1:7"
    assert msgs[7][2]["Ssmd-Recv-Ns"] == "1007" and msgs[7][2]["Ssmd-Conn"] == "c1"
    assert pub.stats.duplicates == 1
    assert stored[:3] == [("c1:1:0", 1), ("c1:1:1", 2), ("c1:1:2", 3)]
    assert stored[-1] == ("c1:1:5", 6)  # the duplicate's ack names the original's sequence
    assert not (tmp_path / "p.spill").exists()


async def test_nats_killed_and_restarted_spills_and_replays(
    tmp_path: Path, env_factory: Callable[..., Environment]
) -> None:
    srv = EmbeddedNats(tmp_path / "nats")
    await srv.start()
    port = srv.actual_port
    assert port is not None
    nc = await connect(srv.url)
    await ensure_streams(nc.jetstream(), env_factory("test"))
    await nc.close()
    pub = Publisher(
        srv.url,
        spill_path=tmp_path / "p.spill",
        spill_max_bytes=1 << 24,
        max_in_flight=32,
        queue_size=50,
        ack_timeout=1.0,
    )
    await pub.start()
    recs = [_rec(i) for i in range(3000)]
    for r in recs[:1000]:
        pub.submit(r)
    await asyncio.sleep(0)  # some are in flight when the server dies
    await srv.kill()
    for r in recs[1000:2500]:
        pub.submit(r)
    assert pub.stats.spilled > 0
    srv = EmbeddedNats(tmp_path / "nats", port=port)
    await srv.start()
    for r in recs[2500:]:
        pub.submit(r)
    assert await pub.wait_idle(30)
    await pub.close()
    nc = await connect(srv.url)
    try:
        msgs = await _stream_msgs(nc.jetstream(), "TEST_KALSHI")
    finally:
        await nc.close()
        await srv.stop()
    got = [m[1] for m in msgs]
    assert len(got) == len(set(got)) == 3000  # none lost, none duplicated
    assert got == [r.payload for r in recs]  # and in order


async def test_spill_overflow_reports_the_gap_and_leftovers_survive_a_restart(
    tmp_path: Path, env_factory: Callable[..., Environment]
) -> None:
    srv = EmbeddedNats(tmp_path / "nats")
    await srv.start()
    port = srv.actual_port
    nc = await connect(srv.url)
    await ensure_streams(nc.jetstream(), env_factory("test"))
    await nc.close()
    gaps: list[OverflowGap] = []
    one = len(encode_record(_rec(0)))
    pub = Publisher(
        srv.url,
        spill_path=tmp_path / "p.spill",
        spill_max_bytes=one * 20,
        queue_size=10,
        ack_timeout=0.5,
        on_overflow=gaps.append,
    )
    await pub.start()
    await srv.kill()
    await until(lambda: not pub.connected, 10, "publisher to see NATS gone")
    for i in range(100):
        pub.submit(_rec(i), sid=1, seq=i, ticker=f"M{i % 3}")
    assert pub.stats.overflow_dropped > 0
    await pub.close(timeout=0.2)  # NATS is down: everything kept goes to the spill file
    assert (tmp_path / "p.spill").exists()
    srv = EmbeddedNats(tmp_path / "nats", port=port or 0)
    await srv.start()
    pub2 = Publisher(srv.url, spill_path=tmp_path / "p.spill", spill_max_bytes=1 << 20)
    await pub2.start()
    assert await pub2.wait_idle(20)
    await pub2.close()
    nc = await connect(srv.url)
    try:
        msgs = await _stream_msgs(nc.jetstream(), "TEST_KALSHI")
    finally:
        await nc.close()
        await srv.stop()
    kept = len(msgs)
    assert kept == 100 - pub.stats.overflow_dropped
    assert [m[1] for m in msgs] == [_rec(i).payload for i in range(kept)]
    # The gap is reported when the spill drains (by the run that sees the overflow end);
    # after a restart the in-memory gap of the first run is reported at close instead.
    assert pub.stats.overflow_dropped == 100 - kept
    assert len(gaps) == 1 and gaps[0].sid == 1 and gaps[0].dropped == 100 - kept
    assert gaps[0].first_seq == kept and gaps[0].last_seq == 99
