"""The archiver against a real nats-server: lines, manifests, rotation, gaps, restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from nats.aio.client import Client
from nats.js import JetStreamContext

from ssmd import subjects
from ssmd.archiver import Archiver
from ssmd.archiver.manifest import MANIFEST, decode_line, encode_line, iter_lines
from ssmd.transport.kv import read_status
from ssmd.transport.server import EmbeddedNats
from ssmd.transport.streams import ensure_streams

from .archiver_support import (
    BASE_NS,
    FakeClock,
    archive_env,
    ctx_for,
    message,
    publish_all,
    read_day,
)

MIN_NS = 60_000_000_000


async def test_line_format_splices_frame_bytes() -> None:
    frame = b'{"type":"trade","msg":{"yes_price_dollars":"0.4500"}}'
    line = encode_line(7, 123, "test.kalshi.json.trade.T%2EX", frame)
    assert line == (
        b'{"seq":7,"recv_ns":123,"subject":"test.kalshi.json.trade.T%2EX","frame":' + frame + b"}\n"
    )
    assert orjson.loads(line)["frame"]["msg"]["yes_price_dollars"] == "0.4500"
    rec = decode_line(line)
    assert (rec.seq, rec.recv_ns, rec.subject, rec.frame) == (
        7,
        123,
        "test.kalshi.json.trade.T%2EX",
        frame,
    )
    # a frame that is not one JSON line is still kept exactly, and the line stays JSON
    bad = b"not json\nat all"
    line = encode_line(8, 1, "s", bad)
    assert orjson.loads(line)["seq"] == 8
    assert decode_line(line).frame == bad


async def test_archives_every_message_once_with_matching_manifest(
    nats_server: EmbeddedNats, nc: Client, js: JetStreamContext, tmp_path: Path
) -> None:
    env = archive_env(tmp_path / "archive", spec={"feed": {"endpoint": "sim"}})
    await ensure_streams(js, env)
    n = 600
    msgs = [message("test", "kalshi", i, BASE_NS + i * 1_000_000) for i in range(n)]
    await publish_all(nc, msgs)
    arch = Archiver(ctx_for(env, nats_server.url, tmp_path), now=FakeClock(BASE_NS / 1e9))
    await arch.start()
    await arch.wait_until_acked(n)
    status = await read_status(js, "test")  # the status document is there while running
    await arch.stop()
    assert status["archiver"]["source"] == "simulator"

    m, records = read_day(tmp_path / "archive", "kalshi", "2026-01-01")
    assert [r.seq for r in records] == list(range(1, n + 1))
    assert [r.frame for r in records] == [data for _, data, _ in msgs]
    assert [r.recv_ns for r in records] == [BASE_NS + i * 1_000_000 for i in range(n)]
    assert m.records == sum(f.records for f in m.files) == n
    assert m.source == "simulator"
    assert m.files[0].name == "0000.jsonl.zst"
    assert (m.files[0].nats_start_seq, m.files[0].nats_end_seq) == (1, n)
    assert m.message_types == {"trade": 200, "ticker": 200, "orderbook": 200}
    assert "KX.WEIRD*TICK" in m.tickers
    assert not m.has_gaps
    assert (
        m.files[0].bytes == (tmp_path / "archive/kalshi/2026-01-01/0000.jsonl.zst").stat().st_size
    )
    assert not list((tmp_path / "archive").rglob("*.partial"))


async def test_rotates_at_window_boundary_by_receive_time_and_clock(
    nats_server: EmbeddedNats, nc: Client, js: JetStreamContext, tmp_path: Path
) -> None:
    env = archive_env(tmp_path / "a", rotationInterval="15m")
    await ensure_streams(js, env)
    times = [BASE_NS + 15 * MIN_NS - 1, BASE_NS + 15 * MIN_NS, BASE_NS + 15 * MIN_NS + 1]
    await publish_all(nc, [message("test", "kalshi", i, t) for i, t in enumerate(times)])
    clock = FakeClock(times[-1] / 1e9)
    arch = Archiver(ctx_for(env, nats_server.url, tmp_path), now=clock)
    await arch.start()
    await arch.wait_until_acked(3)
    day = tmp_path / "a/kalshi/2026-01-01"
    m, _ = read_day(tmp_path / "a", "kalshi", "2026-01-01")
    assert [(f.name, f.records) for f in m.files] == [("0000.jsonl.zst", 1)]
    assert (day / "0015.jsonl.zst.partial").exists()

    # No more messages: the clock passing the window end closes the idle file.
    clock.t = (BASE_NS + 30 * MIN_NS) / 1e9
    await publish_all(nc, [message("test", "kalshi", 3, BASE_NS + 31 * MIN_NS)])
    await arch.wait_until_acked(4)
    m, records = read_day(tmp_path / "a", "kalshi", "2026-01-01")
    assert [(f.name, f.records) for f in m.files] == [("0000.jsonl.zst", 1), ("0015.jsonl.zst", 2)]
    await arch.stop()
    m, records = read_day(tmp_path / "a", "kalshi", "2026-01-01")
    assert [f.name for f in m.files] == ["0000.jsonl.zst", "0015.jsonl.zst", "0030.jsonl.zst"]
    assert [r.seq for r in records] == [1, 2, 3, 4]
    assert not list(day.glob("*.partial"))


async def test_stream_and_exchange_gaps_have_exact_ranges(
    nats_server: EmbeddedNats, nc: Client, js: JetStreamContext, tmp_path: Path
) -> None:
    env = archive_env(tmp_path / "a")
    await ensure_streams(js, env)
    await publish_all(nc, [message("test", "kalshi", i, BASE_NS + i) for i in range(10)])
    gap = {
        "cause": "seq_gap",
        "conn": "c1",
        "sid": 1,
        "expected_seq": 41,
        "received_seq": 45,
        "markets": ["KXBTCD-25DEC31-T100000"],
        "start_ns": BASE_NS + 5,
        "end_ns": BASE_NS + 9,
    }
    await publish_all(
        nc,
        [
            (
                subjects.gap_subject("test", "kalshi"),
                orjson.dumps(gap),
                {"Ssmd-Recv-Ns": str(BASE_NS + 10)},
            )
        ]
        + [message("test", "kalshi", i, BASE_NS + i) for i in range(11, 14)],
    )
    stream = subjects.stream_name("test", "kalshi")
    for seq in (4, 5, 6, 13):  # as if they expired before the archiver read them
        await js.delete_msg(stream, seq)
    arch = Archiver(ctx_for(env, nats_server.url, tmp_path), now=FakeClock(BASE_NS / 1e9))
    await arch.start()
    await arch.wait_until_acked(14)
    await arch.stop()
    m, records = read_day(tmp_path / "a", "kalshi", "2026-01-01")
    assert [(g["from_seq"], g["to_seq"], g["count"]) for g in m.gaps["stream"]] == [
        (4, 6, 3),
        (13, 13, 1),
    ]
    assert m.has_gaps
    [ex] = m.gaps["exchange"]
    assert ex["seq"] == 11 and ex["expected_seq"] == 41 and ex["received_seq"] == 45
    assert ex["cause"] == "seq_gap" and ex["markets"] == gap["markets"]
    assert [r.seq for r in records] == [1, 2, 3, 7, 8, 9, 10, 11, 12, 14]
    assert m.message_types["gap"] == 1


async def test_restart_resumes_from_consumer_without_duplicates(
    nats_server: EmbeddedNats, nc: Client, js: JetStreamContext, tmp_path: Path
) -> None:
    env = archive_env(tmp_path / "a")
    await ensure_streams(js, env)
    await publish_all(nc, [message("test", "kalshi", i, BASE_NS + i) for i in range(100)])
    ctx = ctx_for(env, nats_server.url, tmp_path)
    arch = Archiver(ctx, now=FakeClock(BASE_NS / 1e9))
    await arch.start()
    await arch.wait_until_acked(100)
    await arch.stop()
    await publish_all(nc, [message("test", "kalshi", i, BASE_NS + i) for i in range(100, 150)])
    arch = Archiver(ctx, now=FakeClock(BASE_NS / 1e9))
    await arch.start()
    await arch.wait_until_acked(150)
    await arch.stop()
    m, records = read_day(tmp_path / "a", "kalshi", "2026-01-01")
    assert [r.seq for r in records] == list(range(1, 151))
    assert [f.name for f in m.files] == ["0000.jsonl.zst", "0000-1.jsonl.zst"]
    assert m.records == 150 and not m.has_gaps
    # A third start reads the day back from disk for the status document's inventory (the
    # operator's registry) and, with nothing left to write, reports itself caught up.
    arch = Archiver(ctx, now=FakeClock(BASE_NS / 1e9))
    await arch.start()
    await arch.wait_until_acked(150)
    snap = arch.status_snapshot()
    await arch.stop()
    assert snap["inventory"] == [
        {"date": "2026-01-01", "records": 150, "bytes": m.bytes, "files": 2, "gaps": 0}
    ]
    assert snap["caught_up"] is True and snap["open_files"] == 0


async def test_torn_partial_is_repaired_and_missing_manifest_entry_restored(
    nats_server: EmbeddedNats, nc: Client, js: JetStreamContext, tmp_path: Path
) -> None:
    env = archive_env(tmp_path / "a")
    await ensure_streams(js, env)
    await publish_all(nc, [message("test", "kalshi", i, BASE_NS + i) for i in range(30)])
    ctx = ctx_for(env, nats_server.url, tmp_path)
    arch = Archiver(ctx, now=FakeClock(BASE_NS / 1e9))
    await asyncio.wait_for(arch.start(), 5)
    await asyncio.wait_for(arch.wait_until_acked(30), 5)
    await asyncio.wait_for(arch.stop(), 5)
    day = tmp_path / "a/kalshi/2026-01-01"
    # Simulate a crash: the closed file goes back to .partial with a torn frame appended,
    # and the manifest does not know it.
    good = (day / "0000.jsonl.zst").read_bytes()
    (day / "0000.jsonl.zst").unlink()
    (day / MANIFEST).unlink()
    (day / "0000.jsonl.zst.partial").write_bytes(good + good[: len(good) // 2])
    arch = Archiver(ctx, now=FakeClock(BASE_NS / 1e9))
    await asyncio.wait_for(arch.start(), 5)
    await asyncio.wait_for(arch.wait_until_acked(30), 5)
    await asyncio.wait_for(arch.stop(), 5)
    m, records = read_day(tmp_path / "a", "kalshi", "2026-01-01")
    assert [r.seq for r in records] == list(range(1, 31))
    assert (day / "0000.jsonl.zst").read_bytes() == good
    assert m.records == 30 and m.files[0].bytes == len(good)


async def test_records_count_equals_lines(tmp_path: Path) -> None:
    # iter_lines over chunk boundaries never splits or merges lines
    chunks = [
        b'{"seq":1,"recv_ns":1,"subject":"a","frame":{}}\n{"seq":2,',
        b'"recv_ns":2,"subject":"a","frame":[]}\n',
    ]
    lines = [line for ls in iter_lines(chunks) for line in ls]
    assert [decode_line(x).seq for x in lines] == [1, 2]
