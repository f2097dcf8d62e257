"""Delivery modes, slow clients and drop policies, auth, admin: real NATS, real sockets."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import websockets
from click.testing import CliRunner
from nats.js import JetStreamContext

from ssmd.cli.main import cli
from ssmd.gateway.clients import ClientState
from ssmd.keys.resolve import KeyResolver
from ssmd.spec import Environment
from ssmd.transport.server import EmbeddedNats

from .gateway_support import WsClient, prepare, publish_frames, start_gateway, wait_for

T = "KXTEST-26JAN01-T1"


def snapshot(seq: int, ticker: str = T, levels: int = 5, base: int = 10) -> bytes:
    yes = [[f"{(base + i) / 100:.4f}", f"{10 + i}.00"] for i in range(levels)]
    no = [[f"{(base + i) / 100:.4f}", f"{20 + i}.00"] for i in range(levels)]
    return orjson.dumps(
        {
            "type": "orderbook_snapshot",
            "sid": 1,
            "seq": seq,
            "msg": {"market_ticker": ticker, "yes_dollars_fp": yes, "no_dollars_fp": no},
        }
    )


def delta(seq: int, price: str, d: str, side: str = "yes", ticker: str = T) -> bytes:
    return orjson.dumps(
        {
            "type": "orderbook_delta",
            "sid": 1,
            "seq": seq,
            "msg": {"market_ticker": ticker, "price_dollars": price, "delta_fp": d, "side": side},
        }
    )


async def test_conflated_client_gets_at_most_one_update_per_interval_with_latest_state(
    nats_server: EmbeddedNats,
    js: JetStreamContext,
    env_factory: Callable[..., Environment],
    tmp_path: Path,
) -> None:
    env = env_factory()
    await prepare(js, env)
    gw = await start_gateway(env, nats_server.url, tmp_path)
    try:
        await publish_frames(js, "test", "kalshi", [snapshot(1)])
        rt = await WsClient.connect(f"{gw.url}/v1/stream?symbols={T}")
        cf = await WsClient.connect(f"{gw.url}/v1/stream?symbols={T}&mode=conflated&interval_ms=50")
        lt = await WsClient.connect(f"{gw.url}/v1/stream?symbols={T}&mode=latest")
        # 400 deltas in 4 bursts: +1 contract at 0.10 each time.
        seq = 1
        for _ in range(4):
            burst = []
            for _ in range(100):
                seq += 1
                burst.append(delta(seq, "0.10", "1.00"))
            await publish_frames(js, "test", "kalshi", burst)
        final = 10 + 400
        for c in (rt, cf, lt):
            await wait_for(lambda c=c: c.books.get(T, {}).get(0.1) == final, 10, "final state")
        updates = [e for e in rt.of("orderbook") if e["action"] == "update"]
        assert len(updates) == 400  # realtime: every change
        conflated = [e for e in cf.of("orderbook") if "interval" in e]
        intervals = [e["interval"] for e in conflated]
        assert len(intervals) == len(set(intervals)), "more than one book update in an interval"
        assert intervals == sorted(intervals)
        assert all(e["action"] == "snapshot" for e in conflated)  # full latest state
        assert len(conflated) < 400
        assert conflated[-1]["bids"][-1] == [0.1, float(final)]
        assert gw.hub.clients[next(iter(gw.hub.clients))] is not None
        for c in (rt, cf, lt):
            await c.close()
    finally:
        await gw.stop()


class SlowClient:
    """A WebSocket client that completes the handshake and then does not read.

    Written on a raw socket: a client library keeps reading into its own memory, which
    would hide the slowness from the gateway. Frames are parsed by hand when it reads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, query: str) -> SlowClient:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=s, limit=4096)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /v1/stream?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head[:100]
        # Stop reading: asyncio's StreamReader pauses the transport once its buffer is full.
        return cls(reader, writer)

    async def frame(self) -> bytes:
        _, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = int.from_bytes(await self.reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await self.reader.readexactly(8), "big")
        return await self.reader.readexactly(n)

    def close(self) -> None:
        self.writer.close()


async def _run_slow(
    env: Environment, nats_server: EmbeddedNats, js: JetStreamContext, tmp_path: Path
) -> tuple[Any, list[WsClient], SlowClient, int]:
    await prepare(js, env)
    gw = await start_gateway(env, nats_server.url, tmp_path)
    await publish_frames(js, "test", "kalshi", [snapshot(1, levels=30)])
    fast = [await WsClient.connect(f"{gw.url}/v1/stream?symbols={T}") for _ in range(3)]
    slow = await SlowClient.connect(gw.port, f"symbols={T}")
    await wait_for(lambda: len(gw.hub.clients) == 4, 10, "4 clients")
    # Full re-snapshots: ~1.5 KB events, several MB in all, far beyond socket buffers.
    n = 1500
    frames = [snapshot(i + 2, levels=30, base=10 + (i % 3)) for i in range(n)]
    for i in range(0, n, 500):
        await publish_frames(js, "test", "kalshi", frames[i : i + 500])
    return gw, fast, slow, n


async def test_slow_client_is_dropped_oldest_while_fast_clients_get_everything(
    nats_server: EmbeddedNats,
    js: JetStreamContext,
    env_factory: Callable[..., Environment],
    tmp_path: Path,
) -> None:
    env = env_factory(
        gateway={
            "buffer": {"maxMessages": 50, "maxBytes": "1Mi", "policy": "drop_oldest"},
            "slowConsumerAfter": "1h",
        }
    )
    gw, fast, slow, n = await _run_slow(env, nats_server, js, tmp_path)
    try:
        for c in fast:
            await wait_for(lambda c=c: len(c.of("orderbook")) == n + 1, 20, "fast clients")
        slow_c = next(c for c in gw.hub.clients.values() if c.dropped)
        assert slow_c.state is ClientState.DROPPING
        assert len(slow_c.queue) <= 50 and slow_c.queued_bytes <= 1 << 20  # bounded
        assert all(c.dropped == 0 for c in gw.hub.clients.values() if c is not slow_c)
        async with aiohttp.ClientSession() as http, http.get(f"{gw.http_url}/metrics") as r:
            text = await r.text()
        assert "ssmd_gateway_messages_dropped_total" in text
        assert "ssmd_gateway_clients_connected 4.0" in text
        assert "ssmd_gateway_client_lag_messages" in text
        # When the slow client reads at last it is told how much it lost, then resynced.
        while True:
            ev = orjson.loads(await asyncio.wait_for(slow.frame(), 10))
            if ev.get("type") == "notice" and ev.get("notice") == "dropped":
                break
        assert ev["count"] > 0
        for c in fast:
            await c.close()
        slow.close()
    finally:
        await gw.stop()


async def test_slow_client_is_disconnected_with_policy_disconnect(
    nats_server: EmbeddedNats,
    js: JetStreamContext,
    env_factory: Callable[..., Environment],
    tmp_path: Path,
) -> None:
    env = env_factory(
        gateway={"buffer": {"maxMessages": 50, "maxBytes": "1Mi", "policy": "disconnect"}}
    )
    gw, fast, slow, n = await _run_slow(env, nats_server, js, tmp_path)
    try:
        for c in fast:
            await wait_for(lambda c=c: len(c.of("orderbook")) == n + 1, 20, "fast clients")
        await wait_for(lambda: gw.hub.disconnects.get("slow_consumer") == 1, 10, "slow dropped")
        await wait_for(lambda: len(gw.hub.clients) == 3, 10, "slow client gone")
        assert all(c.dropped == 0 for c in gw.hub.clients.values())
        for c in fast:
            await c.close()
        slow.close()
    finally:
        await gw.stop()


async def test_api_keys_401_without_and_admin_commands(
    nats_server: EmbeddedNats,
    js: JetStreamContext,
    env_factory: Callable[..., Environment],
    tmp_path: Path,
) -> None:
    env = env_factory(
        keys={"gateway": {"type": "api_key", "fields": ["api_keys"], "env": {"api_keys": "GWK"}}},
        gateway={"auth": "$key:gateway"},
    )
    resolver = KeyResolver(env, environ={"GWK": "k-alpha, k-beta"})
    await prepare(js, env)
    gw = await start_gateway(env, nats_server.url, tmp_path, resolver=resolver)
    try:
        assert "k-alpha" not in repr(gw.auth)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{gw.http_url}/v1/markets") as r:
                assert r.status == 401
                assert "k-alpha" not in await r.text()
            async with http.get(f"{gw.http_url}/v1/markets", headers={"X-API-Key": "nope"}) as r:
                assert r.status == 401
            try:
                await websockets.connect(f"{gw.url}/v1/stream")
                raise AssertionError("connected without a key")
            except websockets.InvalidStatus as exc:
                assert exc.response.status_code == 401
            h = {"Authorization": "Bearer k-beta"}
            cl = await WsClient.connect(f"{gw.url}/v1/stream?symbols={T}", additional_headers=h)
            await wait_for(lambda: bool(cl.of("subscribed")), 5, "subscribed")
            async with http.get(f"{gw.http_url}/v1/admin/clients", headers=h) as r:
                (info,) = (await r.json())["clients"]
            assert info["symbols"] == [T] and info["user"].startswith("key-")
            cid = info["id"]
            # The admin CLI against the running gateway.
            runner = CliRunner()

            def run(*args: str) -> Any:
                return runner.invoke(
                    cli, [*args, "--gateway", gw.http_url], env={"SSMD_API_KEY": "k-beta"}
                )

            r0 = await asyncio.to_thread(run, "client", "list", "--json")
            assert r0.exit_code == 0, r0.output
            assert [c["id"] for c in orjson.loads(r0.output)] == [cid]
            r0 = await asyncio.to_thread(run, "client", "show", cid)
            assert r0.exit_code == 0 and "symbols" in r0.output
            r0 = await asyncio.to_thread(run, "client", "set-mode", cid, "latest")
            assert r0.exit_code == 0 and "mode latest" in r0.output
            r0 = await asyncio.to_thread(run, "client", "show", "c-nope")
            assert r0.exit_code == 1 and "404" in r0.output
            r0 = await asyncio.to_thread(
                runner.invoke,
                cli,
                ["client", "list", "--gateway", gw.http_url],
                env={"SSMD_API_KEY": ""},
            )
            assert r0.exit_code == 1 and "API key" in r0.output
            async with http.post(
                f"{gw.http_url}/v1/admin/clients/{cid}/mode",
                headers=h,
                json={"mode": "conflated", "interval_ms": 200},
            ) as r:
                assert (await r.json())["mode"] == "conflated"
            async with http.post(
                f"{gw.http_url}/v1/admin/clients/{cid}/mode", headers=h, json={"mode": "x"}
            ) as r:
                assert r.status == 400
            async with http.post(f"{gw.http_url}/v1/admin/clients/{cid}/disconnect", headers=h):
                pass
            await asyncio.wait_for(cl.closed.wait(), 5)
            async with http.get(f"{gw.http_url}/v1/health") as r:  # open for probes
                assert r.status == 200
    finally:
        await gw.stop()
