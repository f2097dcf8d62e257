"""Benchmark: sustained frame rate of the Kalshi simulator to one plain websockets client.

Prints one JSON object:
* ``frames_per_s``: simulator (rate=0, i.e. unlimited) to one client subscribed to every
  channel (orderbook_delta on all markets, ticker and trade firehose, lifecycle), counted
  by the client over ``--seconds`` after a warm-up.
* ``ceiling_per_s``: in the same run, a bare aiohttp server sending frames of the same
  mean size with ``send_frame`` in a loop, to the same client.
* ``ceiling_batched_per_s``: a bare server writing pre-framed batches (the client's limit).
* ``ratio`` = frames_per_s / ceiling_per_s, ``ratio_batched`` likewise.

With ``--rounds N`` the three runs alternate N times and medians are reported (this
machine is shared and noisy).

The client runs in its own process, so the server and the client each get a core.

    .venv/bin/python bench/sim.py [--seconds 3] [--warmup 1] [--markets 50] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import WSMsgType, web

from ssmd.sim.kalshi import KalshiSim, SimConfig
from ssmd.sim.kalshi.wire import ws_text_frames


async def client_main(
    url: str, keyid_path: str, pem_path: str, tickers: list[str], warmup: float, seconds: float
) -> None:
    from websockets.asyncio.client import connect

    from ssmd.feeds.kalshi.auth import KalshiCredentials

    headers = {}
    if keyid_path:
        key_id = Path(keyid_path).read_text().strip()  # noqa: ASYNC240 - once, before connecting
        headers = KalshiCredentials.from_files(key_id, pem_path).headers()
    # close_timeout: the bare servers never read, so they never answer the close handshake.
    async with connect(
        url, additional_headers=headers, max_size=None, ping_interval=None, close_timeout=0.2
    ) as ws:
        subs = [
            {"channels": ["orderbook_delta"], "market_tickers": tickers},
            {"channels": ["ticker", "trade"]},
            {"channels": ["market_lifecycle_v2"]},
        ]
        for i, p in enumerate(subs, 1):
            await ws.send(json.dumps({"id": i, "cmd": "subscribe", "params": p}))
        t_end_warm = time.perf_counter() + warmup
        n = 0
        nbytes = 0
        async for _ in ws:
            if time.perf_counter() >= t_end_warm:
                break
        t0 = time.perf_counter()
        t_end = t0 + seconds
        async for m in ws:
            n += 1
            nbytes += len(m)
            if n & 1023 == 0 and time.perf_counter() >= t_end:
                break
        dt = time.perf_counter() - t0
    print(
        json.dumps({"frames": n, "seconds": dt, "per_s": n / dt, "mean_bytes": nbytes / max(n, 1)})
    )


def run_client(
    url: str, creds: tuple[str, str], tickers: list[str], warmup: float, seconds: float
) -> dict[str, float]:
    cmd = [
        sys.executable,
        __file__,
        "--client",
        url,
        creds[0],
        creds[1],
        ",".join(tickers),
        str(warmup),
        str(seconds),
    ]
    return dict(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))


async def bare_server(payload: bytes, batched: bool) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        t = request.transport
        assert t is not None
        try:
            if batched:
                batch = ws_text_frames([payload] * 512)
                while not ws.closed and not t.is_closing():
                    if t.get_write_buffer_size() > 1 << 20:
                        await asyncio.sleep(0.001)
                        continue
                    t.write(batch)
                    await asyncio.sleep(0)
            else:
                while not ws.closed and not t.is_closing():
                    for _ in range(512):
                        await ws.send_frame(payload, WSMsgType.TEXT)
                    await asyncio.sleep(0)
        except (ConnectionError, RuntimeError):
            pass
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


async def sim_run(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SimConfig(
            seed=1,
            markets=args.markets,
            rate=0,
            start_ms=1767211200000,
            data_dir=Path(tmp),
            lifecycle_interval_s=5.0,
        )
        async with KalshiSim(cfg) as sim:
            assert sim.credentials_paths is not None
            creds = (str(sim.credentials_paths[0]), str(sim.credentials_paths[1]))
            tickers = [m.ticker for m in sim.markets]
            return await asyncio.to_thread(
                run_client, sim.ws_url, creds, tickers, args.warmup, args.seconds
            )


async def ceiling_run(args: argparse.Namespace, payload: bytes, batched: bool) -> float:
    runner, port = await bare_server(payload, batched)
    try:
        res = await asyncio.to_thread(
            run_client, f"ws://127.0.0.1:{port}/", ("", ""), [], args.warmup, args.seconds
        )
    finally:
        await runner.cleanup()
    return res["per_s"]


async def bench(args: argparse.Namespace) -> dict[str, object]:
    # Rounds alternate simulator and ceilings so that load from other processes hits all
    # of them alike; medians are reported.
    sims: list[dict[str, float]] = []
    plain: list[float] = []
    batched: list[float] = []
    for _ in range(args.rounds):
        res = await sim_run(args)
        sims.append(res)
        size = max(2, round(res["mean_bytes"]))
        payload = (b'{"pad":"' + b"x" * size)[: size - 2] + b'"}'
        plain.append(await ceiling_run(args, payload, batched=False))
        batched.append(await ceiling_run(args, payload, batched=True))
    fps = statistics.median(r["per_s"] for r in sims)
    ceil = statistics.median(plain)
    ceil_b = statistics.median(batched)
    return {
        "frames_per_s": round(fps),
        "ceiling_per_s": round(ceil),
        "ratio": round(fps / ceil, 3),
        "ceiling_batched_per_s": round(ceil_b),
        "ratio_batched": round(fps / ceil_b, 3),
        "mean_frame_bytes": round(statistics.median(r["mean_bytes"] for r in sims), 1),
        "seconds": args.seconds,
        "rounds": args.rounds,
        "markets": args.markets,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, keyid, pem, tickers, warmup, seconds = sys.argv[2:8]
        asyncio.run(
            client_main(
                url, keyid, pem, [t for t in tickers.split(",") if t], float(warmup), float(seconds)
            )
        )
        return
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=3.0, help="measurement window per run (>= 3)")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--markets", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds; medians reported")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(bench(args))))


if __name__ == "__main__":
    main()
