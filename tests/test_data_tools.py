"""``ssmd data`` on an archive made by the real archiver from a real nats-server."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from nats.aio.client import Client
from nats.js import JetStreamContext

from ssmd import subjects
from ssmd.archiver import Archiver
from ssmd.cli.main import cli
from ssmd.transport.server import EmbeddedNats
from ssmd.transport.streams import ensure_streams

from .archiver_support import BASE_NS, FakeClock, archive_env, ctx_for, message, publish_all

N = 3000
DATE = "2026-01-01"


async def invoke(*args: str) -> Result:
    # the CLI runs its own event loop: keep it off ours
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), catch_exceptions=False)


@pytest.fixture
async def archived(
    nats_server: EmbeddedNats, nc: Client, js: JetStreamContext, tmp_path: Path
) -> tuple[Path, list[tuple[str, bytes, dict[str, str]]]]:
    root = tmp_path / "archive"
    env = archive_env(root, rotationInterval="5m")
    await ensure_streams(js, env)
    # 3000 messages over 15 minutes of receive time → 3 files; one gap record; seq 10 deleted
    msgs = [message("test", "kalshi", i, BASE_NS + i * 300_000_000) for i in range(N)]
    gap = {
        "cause": "disconnect",
        "conn": "c1",
        "start_ns": BASE_NS,
        "end_ns": BASE_NS + 2_000_000_000,
    }
    msgs.insert(
        5,
        (
            subjects.gap_subject("test", "kalshi"),
            orjson.dumps(gap),
            {"Ssmd-Recv-Ns": str(BASE_NS + 1)},
        ),
    )
    await publish_all(nc, msgs)
    await js.delete_msg(subjects.stream_name("test", "kalshi"), 10)
    arch = Archiver(ctx_for(env, nats_server.url, tmp_path), now=FakeClock(BASE_NS / 1e9))
    await arch.start()
    await arch.wait_until_acked(len(msgs))
    await arch.stop()
    kept = [m for i, m in enumerate(msgs) if i != 9]
    return root, kept


async def test_replay_gives_back_frames_byte_identical_in_stream_order(
    archived: tuple[Path, list],
) -> None:  # type: ignore[type-arg]
    root, msgs = archived
    res = await invoke("data", "replay", "--root", str(root), "--date", DATE, "--speed", "max")
    assert res.exit_code == 0, res.output
    frames = [data for subj, data, _ in msgs if not subj.endswith(".gap")]
    assert res.stdout_bytes == b"".join(f + b"\n" for f in frames)
    # filtered (slow path) gives the same bytes for the selection
    res = await invoke(
        "data",
        "replay",
        "--root",
        str(root),
        "--date",
        DATE,
        "--type",
        "trade",
        "--ticker",
        "KXBTCD-25DEC31-T100000",
    )
    want = [
        d
        for s, d, _ in msgs
        if s == subjects.json_subject("test", "kalshi", "trade", "KXBTCD-25DEC31-T100000")
    ]
    assert res.stdout_bytes == b"".join(f + b"\n" for f in want)
    # original pacing at 1e6x speed still replays everything in order
    res = await invoke("data", "replay", "--root", str(root), "--date", DATE, "--speed", "1000000")
    assert res.stdout_bytes == b"".join(f + b"\n" for f in frames)


async def test_replay_to_nats_republishes_under_prefix(
    archived: tuple[Path, list], nats_server: EmbeddedNats, nc: Client
) -> None:  # type: ignore[type-arg]
    root, msgs = archived
    got: list[tuple[str, bytes]] = []
    done = asyncio.Event()
    frames = [(s, d) for s, d, _ in msgs if not s.endswith(".gap")]

    async def cb(msg: object) -> None:
        got.append((msg.subject, msg.data))  # type: ignore[attr-defined]
        if len(got) == len(frames):
            done.set()

    await nc.subscribe("replay.>", cb=cb)
    await nc.flush()
    res = await invoke(
        "data",
        "replay",
        "--root",
        str(root),
        "--date",
        DATE,
        "--to-nats",
        "replay",
        "--nats-url",
        nats_server.url,
    )
    assert res.exit_code == 0, res.output
    await asyncio.wait_for(done.wait(), 10)
    assert got == [(f"replay.{s}", d) for s, d in frames]


async def test_export_parquet_rows_and_trade_prices_match_archive(
    archived: tuple[Path, list], tmp_path: Path
) -> None:  # type: ignore[type-arg]
    root, msgs = archived
    out = tmp_path / "day.parquet"
    res = await invoke(
        "data",
        "export",
        "--root",
        str(root),
        "--date",
        DATE,
        "--format",
        "parquet",
        "--out",
        str(out),
    )
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.num_rows == len(msgs)
    rows = table.drop_columns(["recv_time"]).to_pylist()
    recv = table.column("recv_time").cast(pa.int64()).to_pylist()
    assert recv[0] == BASE_NS and recv[-1] == BASE_NS + (N - 1) * 300_000_000
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    trades = [r for r in rows if r["channel"] == "trade"]
    want = [orjson.loads(d)["msg"] for s, d, _ in msgs if ".trade." in s]
    assert [r["yes_price"] for r in trades] == [Decimal(m["yes_price_dollars"]) for m in want]
    assert [r["count"] for r in trades] == [Decimal(m["count_fp"]) for m in want]
    assert all(isinstance(r["yes_price"], Decimal) for r in trades)
    deltas = [r for r in rows if r["type"] == "orderbook_delta"]
    assert deltas and all(r["delta"] is not None and r["side"] in ("yes", "no") for r in deltas)


async def test_inventory_gaps_quality_and_clear_refusal(archived: tuple[Path, list]) -> None:  # type: ignore[type-arg]
    root, msgs = archived
    res = await invoke("data", "inventory", "--root", str(root), "--json")
    [day] = orjson.loads(res.stdout)
    assert day["date"] == DATE and day["records"] == len(msgs) and day["files"] == 3
    assert day["gaps"] == 2 and day["status"] == "partial" and 0 < day["quality"] < 1
    res = await invoke("data", "inventory", "--root", str(root), "--status", "complete", "--json")
    assert orjson.loads(res.stdout) == []
    res = await invoke("data", "inventory", "--root", str(root))
    assert DATE in res.stdout and "partial" in res.stdout

    res = await invoke("data", "gaps", "--root", str(root), "--date", DATE, "--json")
    g = orjson.loads(res.stdout)
    assert [(x["from_seq"], x["to_seq"]) for x in g["stream"]] == [(10, 10)]
    assert g["exchange"][0]["cause"] == "disconnect" and g["exchange"][0]["seq"] == 6

    res = await invoke("data", "quality", "--root", str(root), "--date", DATE, "--json")
    q = orjson.loads(res.stdout)
    assert q["missing_seqs"] == 1 and q["exchange_gaps"] == 1 and q["stream_gaps"] == 1
    assert q["gap_seconds"] == pytest.approx(2.0 + 0.6, abs=0.01)
    assert q["duplicates"] == 0 and q["out_of_order"] == 0 and q["dead_letters"] == 0
    assert 0 < q["score"] < 1 and "coverage" in q["formula"]

    res = await invoke("data", "replay", "--root", str(root), "--date", "2025-12-20")
    assert res.exit_code == 1
    assert res.stderr.strip() == f"error: no data for kalshi on 2025-12-20; latest is {DATE}"


async def test_quality_counts_the_days_dead_letters(
    archived: tuple[Path, list],  # type: ignore[type-arg]
    nats_server: EmbeddedNats,
    nc: Client,
    tmp_path: Path,
) -> None:
    root, _ = archived
    env_file = tmp_path / "env.yaml"
    env_file.write_text(
        "apiVersion: ssmd.io/v1alpha1\nkind: Environment\nmetadata: {name: test}\n"
        f"spec: {{storage: {{local: {{path: {root}}}}}, transport: {{url: '{nats_server.url}'}}}}\n"
    )
    js = nc.jetstream()
    for recv_ns in (BASE_NS + 5, BASE_NS + 7, BASE_NS - 86_400 * 10**9):  # the last: a day before
        doc = {"component": "connector", "error": "bad json", "frame": "{", "recv_ns": recv_ns}
        await js.publish(subjects.dlq_subject("test", "connector"), orjson.dumps(doc))
    res = await invoke("data", "quality", "--env", str(env_file), "--date", DATE, "--json")
    assert res.exit_code == 0, res.output
    q = orjson.loads(res.stdout)
    assert q["details"]["dlq"] == 2 and q["dead_letters"] == 2
    res = await invoke("data", "quality", "--root", str(root), "--date", DATE, "--json")
    assert orjson.loads(res.stdout)["details"]["dlq"].startswith("not checked")
