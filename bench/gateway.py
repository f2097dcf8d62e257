"""Benchmark: gateway fan-out and end-to-end latency.

Prints one JSON object:

* ``fanout_messages_per_s``: events/s delivered by the gateway to 100 WebSocket clients
  subscribed to one market, the clients running in another process. The gateway reads
  ``N`` trade frames from JetStream (published as a burst) and fans each out to every
  client; the rate is counted at the clients, from the first event to the last.
* ``fanout_ceiling_per_s``: in the same run, a bare ``websockets`` server ``broadcast()``-ing
  the same event bytes ``N`` times to the same 100 clients.
* ``fanout_ratio`` = the two divided (target ≥ 0.7).
* ``latency_p50_ms`` / ``latency_p99_ms``: simulator (2,000 frames/s) → connector →
  JetStream → gateway → a client in another process, per event: the client's receive time
  minus the connector's receive time of the frame (``Ssmd-Recv-Ns``, carried as
  ``recv_ns``). The simulator → connector hop is a loopback socket write in the same
  process and is not included.
* ``nats_p99_ms``: the floor: core NATS publish → subscribe latency at the same rate, in
  the same run, between two connections.

    .venv/bin/python bench/gateway.py [--clients 100] [--frames 3000] [--latency-seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
T = "KXBENCH-26JAN01-T1"

# -- a minimal WebSocket client: counts frames, no JSON decode (the clients must not be the
# -- bottleneck of what is measured) --------------------------------------------------------


class _WsCount(asyncio.Protocol):
    def __init__(self, path: str, host: str, on_frame: Any) -> None:
        self.path, self.host = path, host
        self.buf = bytearray()
        self.open = asyncio.get_running_loop().create_future()
        self.on_frame = on_frame
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.open.done():
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.open.set_exception(ConnectionError(bytes(buf[:80]).decode()))
                return
            del buf[: i + 4]
            self.open.set_result(None)
        pos, n = 0, len(buf)
        on_frame = self.on_frame
        while n - pos >= 2:
            ln = buf[pos + 1] & 0x7F
            h = 2
            if ln == 126:
                if n - pos < 4:
                    break
                ln = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                h = 4
            elif ln == 127:
                if n - pos < 10:
                    break
                ln = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                h = 10
            if n - pos < h + ln:
                break
            on_frame(buf, pos + h, pos + h + ln)
            pos += h + ln
        if pos:
            del buf[:pos]

    def send_text(self, payload: bytes) -> None:
        # Client frames are masked; a zero mask keeps the payload as is.
        assert self.transport is not None and len(payload) < 126
        self.transport.write(bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)


async def _connect(url: str, on_frame: Any) -> _WsCount:
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, port = hostport.split(":")
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(
        lambda: _WsCount("/" + path, hostport, on_frame), host, int(port)
    )
    await proto.open
    return proto


async def client_fanout(url: str, clients: int, expect: int, marker: bytes) -> None:
    """Connect ``clients``, say "ready", count frames containing ``marker`` until each has
    ``expect`` of them; print the first/last receive times and the count."""
    counts = [0] * clients
    first = [0]
    last = [0]
    done = asyncio.get_running_loop().create_future()
    remaining = [clients]

    def make(i: int) -> Any:
        def on_frame(buf: bytearray, a: int, b: int) -> None:
            if buf.find(marker, a, b) < 0:
                return
            now = time.perf_counter_ns()
            if not first[0]:
                first[0] = now
            last[0] = now
            counts[i] += 1
            if counts[i] == expect:
                remaining[0] -= 1
                if remaining[0] == 0 and not done.done():
                    done.set_result(None)

        return on_frame

    conns = [await _connect(url, make(i)) for i in range(clients)]
    print("ready", flush=True)
    try:
        await asyncio.wait_for(done, 120)
    except TimeoutError:
        pass
    print(json.dumps({"first": first[0], "last": last[0], "count": sum(counts)}), flush=True)
    for c in conns:
        if c.transport:
            c.transport.close()


async def client_latency(url: str, seconds: float) -> None:
    lat: list[float] = []

    def on_frame(buf: bytearray, a: int, b: int) -> None:
        now = time.time_ns()
        i = buf.find(b'"recv_ns":', a, b)
        if i < 0:
            return
        j = i + 10
        k = j
        while k < b and 48 <= buf[k] <= 57:
            k += 1
        if k > j:
            lat.append((now - int(buf[j:k])) / 1e6)

    c = await _connect(url, on_frame)
    print("ready", flush=True)
    await asyncio.sleep(seconds)
    lat = lat[len(lat) // 10 :]  # the first 10% are warm-up
    print(json.dumps({"p50": _pct(lat, 0.5), "p99": _pct(lat, 0.99), "n": len(lat)}), flush=True)
    if c.transport:
        c.transport.close()


# -- the measured side ---------------------------------------------------------------------


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        *args,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT / "runtime")},
    )


async def _ready(p: asyncio.subprocess.Process) -> None:
    assert p.stdout is not None
    line = await asyncio.wait_for(p.stdout.readline(), 60)
    assert line.strip() == b"ready", line


async def _result(p: asyncio.subprocess.Process) -> dict[str, Any]:
    assert p.stdout is not None
    line = await asyncio.wait_for(p.stdout.readline(), 180)
    await p.wait()
    out: dict[str, Any] = json.loads(line)
    return out


def _trade(i: int) -> bytes:
    return orjson.dumps(
        {
            "type": "trade",
            "sid": 3,
            "msg": {
                "trade_id": f"00000000-0000-0000-0000-{i:012d}",
                "market_ticker": T,
                "yes_price_dollars": "0.4500",
                "no_price_dollars": "0.5500",
                "count_fp": "10.00",
                "taker_outcome_side": "yes",
                "taker_book_side": "bid",
                "ts_ms": 1767211200000 + i,
            },
        }
    )


async def fanout_gateway(
    nats_url: str, data: Path, clients: int, frames: int, name: str = "bench"
) -> tuple[float, bytes]:
    from ssmd import subjects
    from ssmd.gateway.service import Gateway
    from ssmd.runtime import RuntimeContext
    from ssmd.spec import validate_document
    from ssmd.transport.connect import connect
    from ssmd.transport.streams import ensure_streams

    env = validate_document(
        {
            "apiVersion": "ssmd.io/v1alpha1",
            "kind": "Environment",
            "metadata": {"name": name},
            "spec": {
                "gateway": {
                    "maxClients": 1000,
                    "buffer": {"maxMessages": 200000, "maxBytes": "512Mi"},
                }
            },
        }
    )
    nc = await connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, env)  # type: ignore[arg-type]
    gw = Gateway(RuntimeContext(env=env, nats_url=nats_url, data_dir=data), port=0)  # type: ignore[arg-type]
    await gw.start()
    sample: list[bytes] = []
    subj = subjects.json_subject(name, "kalshi", "trade", T)
    # Warm up (and capture the exact event bytes for the ceiling run).
    await js.publish(subj, _trade(0), headers={"Ssmd-Recv-Ns": str(time.time_ns())})
    p = await _spawn(
        "fanout", f"{gw.url}/v1/stream?symbols={T}", str(clients), str(frames), "trade"
    )
    await _ready(p)
    while len(gw.hub.clients) < clients:
        await asyncio.sleep(0.01)
    t0 = time.time_ns()
    acks = [
        js.publish(subj, _trade(i + 1), headers={"Ssmd-Recv-Ns": str(t0)}) for i in range(frames)
    ]
    for i in range(0, len(acks), 500):
        await asyncio.gather(*acks[i : i + 500])
    r = await _result(p)
    md = gw.feed.markets[T]
    sample.append(orjson.dumps(md.trades[-1]))
    await gw.stop()
    await nc.close()
    rate = r["count"] / max((r["last"] - r["first"]) / 1e9, 1e-9)
    return rate, sample[0]


async def fanout_ceiling(clients: int, frames: int, payload: bytes) -> float:
    from websockets.asyncio.server import broadcast, serve

    conns: set[Any] = set()

    async def handler(ws: Any) -> None:
        conns.add(ws)
        try:
            await ws.wait_closed()
        finally:
            conns.discard(ws)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        p = await _spawn("fanout", f"ws://127.0.0.1:{port}/", str(clients), str(frames), "trade")
        await _ready(p)
        while len(conns) < clients:
            await asyncio.sleep(0.01)
        text = payload.decode()
        for i in range(frames):
            broadcast(conns, text)
            if i % 50 == 0:
                await asyncio.sleep(0)  # let the loop write, as a real server would
        r = await _result(p)
    return r["count"] / max((r["last"] - r["first"]) / 1e9, 1e-9)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _wait_http(url: str) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                async with http.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def _age_buckets(url: str) -> list[tuple[float, float]]:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(url) as r:
        text = await r.text()
    buckets = []
    for line in text.splitlines():
        if line.startswith("ssmd_gateway_frame_age_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            n = float(line.rsplit(" ", 1)[1])
            buckets.append((float("inf") if le == "+Inf" else float(le), n))
    return buckets


def _p99_le(before: list[tuple[float, float]], after: list[tuple[float, float]]) -> float:
    """The p99 bucket bound (ms) of what was observed between two scrapes."""
    diff = [(le, n - m) for (le, n), (_, m) in zip(after, before, strict=True)]
    total = diff[-1][1] if diff else 0
    for le, n in diff:
        if total and n >= 0.99 * total:
            return le * 1000
    return float("nan")


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


async def latency(
    nats_url: str, data: Path, seconds: float, rate: int
) -> tuple[float, float, float]:
    from ssmd.connector.service import Connector
    from ssmd.runtime import RuntimeContext
    from ssmd.sim.kalshi import KalshiSim, SimConfig
    from ssmd.spec import validate_document

    env = validate_document(
        {
            "apiVersion": "ssmd.io/v1alpha1",
            "kind": "Environment",
            "metadata": {"name": "lat"},
            "spec": {
                "feed": {"name": "kalshi", "endpoint": "ws://127.0.0.1:1/trade-api/ws/v2"},
                "markets": {"status": ["open"]},
                "connector": {"metricsPort": 0},
            },
        }
    )
    cfg = SimConfig(markets=20, rate=rate, lifecycle_interval_s=0, data_dir=data / "sim")
    async with KalshiSim(cfg) as sim:
        ctx = RuntimeContext(
            env=env,  # type: ignore[arg-type]
            nats_url=nats_url,
            data_dir=data / "conn",
            feed_ws_url=sim.ws_url,
            feed_rest_url=sim.rest_url,
            sim_credentials_dir=cfg.data_dir,
            metrics_port=None,
        )
        conn = Connector(ctx)
        await conn.start()
        # The gateway runs as its own process (`ssmd gateway`), as it is deployed.
        port = _free_port()
        env_file = data / "lat.yaml"
        env_file.write_text(
            "apiVersion: ssmd.io/v1alpha1\nkind: Environment\nmetadata: {name: lat}\n"
            "spec: {feed: {name: kalshi, endpoint: 'ws://127.0.0.1:1/trade-api/ws/v2'}}\n"
        )
        gwp = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ssmd.cli.main",
            "gateway",
            "--env",
            str(env_file),
            "--nats-url",
            nats_url,
            "--port",
            str(port),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT / "runtime")},
        )
        await _wait_http(f"http://127.0.0.1:{port}/v1/health")
        await asyncio.sleep(1.0)  # warm-up: subscriptions, snapshots
        p = await _spawn("latency", f"ws://127.0.0.1:{port}/v1/stream?symbols=*", str(seconds))
        await _ready(p)
        before = await _age_buckets(f"http://127.0.0.1:{port}/metrics")
        r = await _result(p)
        r["upstream_p99_ms"] = _p99_le(
            before, await _age_buckets(f"http://127.0.0.1:{port}/metrics")
        )
        gwp.terminate()
        await gwp.wait()
        await conn.stop()
    return float(r["p50"]), float(r["p99"]), float(r["upstream_p99_ms"])


async def nats_floor(nats_url: str, seconds: float, rate: int) -> float:
    from ssmd.transport.connect import connect

    pub = await connect(nats_url)
    sub = await connect(nats_url)
    lat: list[float] = []

    async def cb(msg: Any) -> None:
        lat.append((time.time_ns() - int(msg.data)) / 1e6)

    await sub.subscribe("bench.floor", cb=cb)
    await sub.flush()
    n = int(seconds * rate)
    t0 = time.perf_counter()
    for i in range(n):
        await pub.publish("bench.floor", str(time.time_ns()).encode())
        await pub.flush()
        delay = t0 + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    await asyncio.sleep(0.2)
    await pub.close()
    await sub.close()
    return _pct(lat[len(lat) // 10 :], 0.99)


async def main(args: argparse.Namespace) -> None:
    from ssmd.transport.server import EmbeddedNats

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        async with EmbeddedNats(d / "nats") as srv:
            # Alternate gateway and ceiling runs and take medians: this machine is shared
            # and one run of either can be off by 2x.
            rates, ceilings = [], []
            for i in range(args.rounds):
                rate, payload = await fanout_gateway(
                    srv.url, d / f"f{i}", args.clients, args.frames, f"bench{i}"
                )
                rates.append(rate)
                ceilings.append(await fanout_ceiling(args.clients, args.frames, payload))
            rate, ceiling = statistics.median(rates), statistics.median(ceilings)
            p50, p99, up99 = await latency(srv.url, d, args.latency_seconds, args.rate)
            floor = await nats_floor(srv.url, args.latency_seconds, args.rate)
    print(
        json.dumps(
            {
                "fanout_messages_per_s": round(rate),
                "fanout_ceiling_per_s": round(ceiling),
                "fanout_ratio": round(rate / ceiling, 3),
                "latency_p50_ms": round(p50, 3),
                "latency_p99_ms": round(p99, 3),
                "nats_p99_ms": round(floor, 3),
                # Connector receive -> gateway receive (p99 bucket bound, from /metrics):
                # how much of latency_p99_ms is upstream of the gateway.
                "upstream_p99_ms_le": up99,
                "fanout_runs": [round(x) for x in rates],
                "ceiling_runs": [round(x) for x in ceilings],
                "clients": args.clients,
                "frames": args.frames,
                "latency_rate_per_s": args.rate,
                "event_bytes": len(payload),
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "fanout":
        asyncio.run(
            client_fanout(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].encode())
        )
    elif len(sys.argv) > 1 and sys.argv[1] == "latency":
        asyncio.run(client_latency(sys.argv[2], float(sys.argv[3])))
    else:
        ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        ap.add_argument("--clients", type=int, default=100)
        ap.add_argument("--frames", type=int, default=3000)
        ap.add_argument("--latency-seconds", type=float, default=5.0)
        ap.add_argument("--rate", type=int, default=2000)
        ap.add_argument("--rounds", type=int, default=3, help="fan-out runs of each (median)")
        asyncio.run(main(ap.parse_args()))
