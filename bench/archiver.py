"""Archiver benchmark: one JSON object on stdout.

* ``messages_per_s``: a pre-filled stream into closed, acked ``.jsonl.zst`` files (Archiver
  start → every sequence acked → graceful stop), with ``lost``/``duplicated`` checked by reading
  the files back;
* ``fetch_ceiling_per_s``: plain nats-py pull consumer ``fetch(1000)`` over the same stream;
* ``zstd_ceiling_mb_s``: zstd level 3 on the same archive bytes (one call per 4 MiB, like the
  archiver's frames);
* ``replay_messages_per_s``: ``ssmd data replay --speed max`` of the archived day (the CLI's own
  function, output to /dev/null), and ``replay_cli_messages_per_s`` for the whole command as a
  process (interpreter start-up included).

Usage: python bench/archiver.py [--messages 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson
import zstandard
from nats.js.api import AckPolicy, ConsumerConfig

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.archiver_support import BASE_NS, archive_env, message, publish_all  # noqa: E402

from ssmd import subjects  # noqa: E402
from ssmd.archiver import Archiver  # noqa: E402
from ssmd.archiver.manifest import decode_line, iter_lines, read_file_chunks  # noqa: E402
from ssmd.archiver.storage import LocalStore  # noqa: E402
from ssmd.data.archive import day_manifest  # noqa: E402
from ssmd.data.replay import replay_day  # noqa: E402
from ssmd.runtime import RuntimeContext  # noqa: E402
from ssmd.transport.connect import connect  # noqa: E402
from ssmd.transport.server import EmbeddedNats  # noqa: E402
from ssmd.transport.streams import ensure_streams  # noqa: E402


async def run(n: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        async with EmbeddedNats(tmp / "nats") as srv:
            nc = await connect(srv.url, name="bench")
            js = nc.jetstream()
            root = tmp / "archive"
            env = archive_env(root, fsyncInterval="1s")
            await ensure_streams(js, env)
            # ~250 ms of receive time per 1000 messages: a 200k run spans one 15m file or so
            msgs = [message("bench", "kalshi", i, BASE_NS + i * 250_000) for i in range(n)]
            msgs = [(s.replace("bench.", "test.", 1), d, h) for s, d, h in msgs]
            await publish_all(nc, msgs)
            stream = subjects.stream_name("test", "kalshi")

            # 1. ceiling: plain nats-py fetch
            sub = await js.pull_subscribe(
                subjects.json_wildcard("test", "kalshi"),
                durable="bench-fetch",
                stream=stream,
                config=ConsumerConfig(ack_policy=AckPolicy.NONE),
            )
            got = 0
            t = time.perf_counter()
            while got < n:
                got += len(await sub.fetch(1000, timeout=5))
            fetch_rate = n / (time.perf_counter() - t)
            await sub.unsubscribe()

            # 2. the archiver, into closed and acked files
            ctx = RuntimeContext(env=env, nats_url=srv.url, data_dir=tmp, status_interval=2.0)
            arch = Archiver(ctx)
            t = time.perf_counter()
            await arch.start()
            await arch.wait_until_acked(n)
            await arch.stop()
            archive_rate = n / (time.perf_counter() - t)
            await nc.close()

        # 3. check: every sequence exactly once
        files = sorted((root / "kalshi").rglob("*.jsonl.zst"))
        seqs: Counter[int] = Counter()
        raw = bytearray()
        for f in files:
            for chunk in read_file_chunks(f):
                raw += chunk
                for lines in iter_lines([chunk]):
                    seqs.update(decode_line(x).seq for x in lines)
        lost = sum(1 for s in range(1, n + 1) if s not in seqs)
        duplicated = sum(c - 1 for c in seqs.values() if c > 1)

        # 4. ceiling: zstd level 3 on the same bytes, 4 MiB frames
        cctx = zstandard.ZstdCompressor(level=3, write_checksum=True)
        data = bytes(raw)
        step = 4 << 20
        t = time.perf_counter()
        for i in range(0, len(data), step):
            cctx.compress(data[i : i + step])
        zstd_mb_s = len(data) / (time.perf_counter() - t) / 1e6

        # 5. replay --speed max: in-process (the CLI's function) and as a command
        store = LocalStore(root)
        dates = await store.list_dates("kalshi")
        replayed = 0
        t = time.perf_counter()
        with open(os.devnull, "wb") as null:  # noqa: ASYNC230 (a benchmark)
            for date in dates:
                m = await day_manifest(store, "kalshi", date)
                replayed += await replay_day(store, "kalshi", m, out=null)
        replay_rate = replayed / (time.perf_counter() - t)
        cli = str(Path(sys.executable).with_name("ssmd"))
        t = time.perf_counter()
        for date in dates:
            subprocess.run(  # noqa: ASYNC221 (timed on purpose)
                [cli, "data", "replay", "--root", str(root), "--date", date, "--speed", "max"],
                stdout=subprocess.DEVNULL,
                check=True,
            )
        replay_cli_rate = replayed / (time.perf_counter() - t)

    return {
        "messages": n,
        "messages_per_s": round(archive_rate),
        "fetch_ceiling_per_s": round(fetch_rate),
        "archiver_vs_fetch": round(archive_rate / fetch_rate, 2),
        "zstd_ceiling_mb_s": round(zstd_mb_s, 1),
        "archive_mb_uncompressed": round(len(data) / 1e6, 1),
        "archive_mb_s_uncompressed": round(archive_rate * len(data) / n / 1e6, 1),
        "replay_messages_per_s": round(replay_rate),
        "replay_cli_messages_per_s": round(replay_cli_rate),
        "files": len(files),
        "lost": lost,
        "duplicated": duplicated,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--messages", type=int, default=200_000)
    args = p.parse_args()
    print(orjson.dumps(asyncio.run(run(args.messages))).decode())


if __name__ == "__main__":
    main()
