"""``kill -9`` of a real ``ssmd archiver`` process at random points of a 200,000-message run:
restarted each time, the files end up holding every stream sequence exactly once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from nats.aio.client import Client
from nats.js import JetStreamContext

from ssmd import subjects
from ssmd.transport.server import EmbeddedNats
from ssmd.transport.streams import ensure_streams

from .archiver_support import BASE_NS, all_records, archive_env, message, publish_all, read_day

N = 200_000
SSMD = str(Path(sys.executable).with_name("ssmd"))


def write_env(path: Path, root: Path) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "ssmd.io/v1alpha1",
                "kind": "Environment",
                "metadata": {"name": "test"},
                "spec": {
                    "storage": {"local": {"path": str(root)}},
                    "archiver": {"fsyncInterval": "20ms", "rotationInterval": "1m"},
                },
            }
        )
    )


async def start_archiver(env_file: Path, url: str, tmp: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        SSMD, "archiver", "--env", str(env_file), "--nats-url", url,
        "--data-dir", str(tmp), "--metrics-port", "0",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def acked_floor(js: JetStreamContext) -> int:
    try:
        info = await js.consumer_info(
            subjects.stream_name("test", "kalshi"), subjects.archiver_consumer("test", "kalshi")
        )
    except Exception:
        return 0
    return info.ack_floor.stream_seq if info.ack_floor else 0


@pytest.mark.slow
async def test_kill_9_at_random_points_loses_and_duplicates_nothing(
    nats_server: EmbeddedNats, nc: Client, js: JetStreamContext, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    env_file = tmp_path / "env.yaml"
    write_env(env_file, root)
    await ensure_streams(js, archive_env(root))
    rng = random.Random(4)
    # 200k messages over ~4 minutes of receive time, so files rotate (1m windows) too.
    msgs = [message("test", "kalshi", i, BASE_NS + i * 1_200_000) for i in range(N)]
    publisher = asyncio.create_task(publish_all(nc, msgs))
    kills = partial_seen = 0
    for _ in range(4):
        before = await acked_floor(js)
        proc = await start_archiver(env_file, nats_server.url, tmp_path)
        # kill only once this run has made progress (acked something), at a random point after
        while await acked_floor(js) <= before:
            assert proc.returncode is None, "archiver exited"
            await asyncio.sleep(0.02)  # another process: poll its consumer state
        await asyncio.sleep(rng.uniform(0.0, 0.4))  # the randomness is the point
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        kills += 1
        partial_seen += bool(list(root.rglob("*.partial")))
    assert await publisher == N
    proc = await start_archiver(env_file, nats_server.url, tmp_path)
    while await acked_floor(js) < N:  # another process: poll its consumer state
        assert proc.returncode is None, "archiver exited"
        await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert await proc.wait() == 0

    records = all_records(root, "kalshi")
    counts = Counter(r.seq for r in records)
    assert not [s for s, c in counts.items() if c > 1], "duplicated sequences"
    assert sorted(counts) == list(range(1, N + 1)), "lost sequences"
    assert not list(root.rglob("*.partial"))
    frames = {i + 1: data for i, (_, data, _) in enumerate(msgs)}
    assert all(r.frame == frames[r.seq] for r in records)
    total = 0
    for d in sorted((root / "kalshi").iterdir()):
        m, recs = read_day(root, "kalshi", d.name)
        assert m.records == len(recs)
        assert {f.name for f in m.files} == {p.name for p in d.glob("*.jsonl.zst")}
        assert not m.gaps["stream"]
        total += m.records
    assert total == N and kills == 4
    assert partial_seen >= 2, "kills should land while a file is being written"
    assert os.listdir(root / "kalshi")
