"""Connector benchmark: one JSON object on stdout.

* ``frames_per_s``: frames from the simulator (its own process, as fast as it can send)
  through the connector as it runs in production (order books on: ``ssmd.books`` is fed by
  the publisher's stored hook and checkpoints books) into JetStream, *acknowledged*, over
  the measurement window;
* ``ceiling_per_s``: in the same run, plain nats-py ``publish_async`` (4000 pending) of the
  same frames, with the same headers, into the same stream;
* ``ratio`` = frames_per_s / ceiling_per_s;
* ``books``: the keeper's state after the run (every book live, nothing queued);
* ``without_books``: the same figures for a second run with the order books off (capture
  only), unless ``--skip-books-off``;
* ``lost`` / ``duplicated``: after the run the simulator is paused and drained; frames it sent
  are compared with what the stream holds (Nats-Msg-Ids are unique per frame, so a count
  above what was sent would be a duplicate, below a loss).

Usage: python bench/connector.py [--seconds 10] [--markets 100] [--skip-books-off]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import make_environment  # noqa: E402

from ssmd import subjects  # noqa: E402
from ssmd.connector.service import Connector  # noqa: E402
from ssmd.runtime import RuntimeContext  # noqa: E402
from ssmd.transport.connect import connect  # noqa: E402
from ssmd.transport.server import EmbeddedNats  # noqa: E402


def _sim_process(markets: int, data_dir: str, conn: Any) -> None:
    from ssmd.sim.kalshi import KalshiSim, SimConfig

    async def main() -> None:
        cfg = SimConfig(markets=markets, rate=0, lifecycle_interval_s=0, data_dir=Path(data_dir))
        async with KalshiSim(cfg) as sim:
            conn.send((sim.ws_url, sim.rest_url, sim.admin_url))
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop

    asyncio.run(main())


async def _admin(http: aiohttp.ClientSession, url: str, method: str = "GET") -> Any:
    async with http.request(method, url) as r:
        return await r.json(content_type=None)


async def phase(
    http: aiohttp.ClientSession,
    admin: str,
    urls: tuple[str, str],
    nats_url: str,
    tmp: Path,
    name: str,
    seconds: float,
    warmup: float,
    books: bool,
    sample: list[tuple[str, bytes]] | None,
) -> dict[str, Any]:
    """One run of the full connector against the (paused) simulator, on stream ``{NAME}_KALSHI``."""
    await _admin(http, f"{admin}/pause", "POST")  # start from a quiet exchange
    env = make_environment(
        name,
        feed={"name": "kalshi", "endpoint": "sim"},
        markets={"status": ["open"]},
        connector={"maxMarketsPerConnection": 500_000, "metricsPort": 0},
    )
    ctx = RuntimeContext(
        env=env,
        nats_url=nats_url,
        data_dir=tmp / name,
        feed_ws_url=urls[0],
        feed_rest_url=urls[1],
        sim_credentials_dir=tmp / "sim",
        metrics_port=None,
        status_interval=2.0,
    )
    c = Connector(ctx, refresh_interval=0, books=books)
    await c.start()
    assert c.publisher is not None
    pub = c.publisher
    if sample is not None:

        def keep(conn: str, envl: Any, data: bytes, recv_ns: int) -> None:
            if len(sample) < 200_000:
                sample.append((envl.type, data))

        c.add_frame_listener(keep)
    await _admin(http, f"{admin}/resume", "POST")
    await asyncio.sleep(warmup)
    a0, t0 = pub.stats.acked, time.perf_counter()
    await asyncio.sleep(seconds)
    a1, t1 = pub.stats.acked, time.perf_counter()
    await _admin(http, f"{admin}/pause", "POST")
    conns = (await _admin(http, f"{admin}/connections"))["connections"]
    sent = sum(int(x["frames_sent"]) + int(x.get("queued", 0)) for x in conns)
    deadline = time.monotonic() + 60
    while sum(s.frames for s in c.shards) < sent and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await pub.wait_idle(60)
    received = sum(s.frames for s in c.shards)
    books_state = None
    if c.books is not None:
        await c.books.wait_applied(30)
        books_state = c.books.snapshot()
    out = {
        "frames_per_s": (a1 - a0) / (t1 - t0),
        "sent": sent,
        "received": received,
        "gaps": dict(c.stats.gaps),
        "dead_letters": c.stats.dlq,
        "publisher": dict(vars(pub.stats)),
        "books": books_state,
    }
    await c.stop()
    nc = await connect(nats_url, name="bench")
    try:
        stream = subjects.stream_name(name, "kalshi")
        info = await nc.jetstream().stream_info(
            stream, subjects_filter=subjects.json_wildcard(name, "kalshi")
        )
        stored = sum((info.state.subjects or {}).values())
    finally:
        await nc.close()
    out["stored"] = stored
    out["lost"] = max(sent - stored, 0)
    out["duplicated"] = max(stored - sent, 0)
    return out


async def ceiling(nats_url: str, sample: list[tuple[str, bytes]]) -> float:
    """nats-py publish_async (4000 pending) of the same frames, same headers, same stream."""
    nc = await connect(nats_url, name="bench-ceiling")
    js = nc.jetstream(publish_async_max_pending=4000)
    subj = [
        subjects.json_subject("bench", "kalshi", subjects.frame_type_for(t), "CEIL")
        for t, _ in sample
    ]
    warm = min(5000, len(sample) // 10)
    for i in range(warm):
        await js.publish_async(subj[i], sample[i][1], headers={"Nats-Msg-Id": f"w{i}"})
    await js.publish_async_completed()
    t0 = time.perf_counter()
    for i in range(warm, len(sample)):
        await js.publish_async(
            subj[i],
            sample[i][1],
            headers={
                "Nats-Msg-Id": f"ceil:{i}",
                "Ssmd-Recv-Ns": str(time.time_ns()),
                "Ssmd-Conn": "ceil",
            },
        )
    await js.publish_async_completed()
    rate = (len(sample) - warm) / (time.perf_counter() - t0)
    await nc.close()
    return rate


async def run(seconds: float, markets: int, warmup: float, books_off: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        parent, child = mp.Pipe()
        proc = mp.get_context("spawn").Process(
            target=_sim_process, args=(markets, str(tmp / "sim"), child)
        )
        proc.start()
        ws_url, rest_url, admin = await asyncio.get_running_loop().run_in_executor(
            None, parent.recv
        )
        try:
            async with EmbeddedNats(tmp / "nats") as srv, aiohttp.ClientSession() as http:
                sample: list[tuple[str, bytes]] = []
                urls = (ws_url, rest_url)
                # The connector as it runs in production: order books on.
                full = await phase(
                    http, admin, urls, srv.url, tmp, "bench", seconds, warmup, True, sample
                )
                ceil = await ceiling(srv.url, sample)
                cap = None
                if books_off:
                    cap = await phase(
                        http, admin, urls, srv.url, tmp, "benchc", seconds, warmup, False, None
                    )
        finally:
            parent.send("stop")
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    result: dict[str, object] = {
        "frames_per_s": round(full["frames_per_s"]),
        "ceiling_per_s": round(ceil),
        "ratio": round(full["frames_per_s"] / ceil, 2),
        "lost": full["lost"],
        "duplicated": full["duplicated"],
        "sent": full["sent"],
        "stored": full["stored"],
        "gaps": full["gaps"],
        "dead_letters": full["dead_letters"],
        "publisher": full["publisher"],
        "books": full["books"],
        "markets": markets,
        "seconds": seconds,
    }
    if cap is not None:
        # The same connector with its order books off (capture only).
        result["without_books"] = {
            "frames_per_s": round(cap["frames_per_s"]),
            "ratio": round(cap["frames_per_s"] / ceil, 2),
            "lost": cap["lost"],
            "duplicated": cap["duplicated"],
            "gaps": cap["gaps"],
        }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--markets", type=int, default=100)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument(
        "--skip-books-off",
        action="store_true",
        help="skip the second run with the order books off (capture only)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    result = asyncio.run(run(args.seconds, args.markets, args.warmup, not args.skip_books_off))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
