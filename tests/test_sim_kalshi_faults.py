"""Kalshi simulator fault injection, each kind observed by a plain client over a real socket,
plus the admin API and the slow-consumer rule (error 25, subscription dropped)."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from typing import Any

import aiohttp
import pytest
from websockets.exceptions import ConnectionClosed

from ssmd.sim.kalshi import Fault, FaultKind, KalshiSim

from .sim_kalshi_helpers import Client, Frame, client, config, headers, tickers

KNOWN_TYPES = {
    "subscribed",
    "unsubscribed",
    "ok",
    "error",
    "orderbook_snapshot",
    "orderbook_delta",
    "ticker",
    "trade",
    "market_lifecycle_v2",
    "event_lifecycle",
}


async def subscribed(sim: KalshiSim, c: Client, n_markets: int = 3) -> list[str]:
    """Orderbook (sid 1) and ticker (sid 2) on a few markets; returns their tickers."""
    ts = tickers(sim, n_markets)
    await c.send("subscribe", {"channels": ["orderbook_delta"], "market_tickers": ts})
    await c.send("subscribe", {"channels": ["ticker"], "market_tickers": ts})
    await c.sync()
    return ts


async def sent_after(sim: KalshiSim, c: Client) -> list[str]:
    """Drain, then read exactly the frames the simulator sent that the client has not read."""
    await sim.drain()
    sent = sim.sent_frames(1)
    new = [await c.recv_text() for _ in range(len(sent) - len(c.raw))]
    assert [s.decode() for s in sent] == c.raw
    return new


async def test_skip_seq_leaves_a_gap_of_one() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        await subscribed(sim, c)
        sim.inject(Fault(FaultKind.SKIP_SEQ, conn=1))
        await sim.step(300)
        await sent_after(sim, c)
        frames = [json.loads(t) for t in c.raw]  # the first delta may be the one withheld
        seqs = [f["seq"] for f in frames if f.get("sid") == 1 and "seq" in f]
        steps = [b - a for a, b in itertools.pairwise(seqs)]
        assert steps.count(2) == 1 and set(steps) == {1, 2}
        assert sim.faults() == []  # consumed


async def test_duplicate_resends_a_frame_byte_identical() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        await subscribed(sim, c)
        sim.inject(Fault(FaultKind.DUPLICATE, count=2))
        await sim.step(300)
        raw = await sent_after(sim, c)
        pairs = [i for i in range(len(raw) - 1) if raw[i] == raw[i + 1]]
        assert len(pairs) == 2


async def test_reorder_swaps_two_frames() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        await c.send(
            "subscribe", {"channels": ["orderbook_delta"], "market_tickers": tickers(sim, 3)}
        )
        await c.sync()
        sim.inject(Fault(FaultKind.REORDER, conn=1))
        await sim.step(300)
        await sent_after(sim, c)
        frames = [json.loads(t) for t in c.raw]
        seqs = [f["seq"] for f in frames if f.get("sid") == 1 and "seq" in f]
        steps = [b - a for a, b in itertools.pairwise(seqs)]
        assert steps.count(-1) == 1 and steps.count(2) == 2  # ..., n, n+2, n+1, n+3, ...
        assert sorted(seqs) == list(range(1, len(seqs) + 1))


@pytest.mark.parametrize("code", [None, 4000])
async def test_close_drops_the_connection(code: int | None) -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        await subscribed(sim, c)
        sim.inject(Fault(FaultKind.CLOSE, conn=1, code=code))
        with pytest.raises(ConnectionClosed) as err:
            await c.recv()
        if code is None:
            assert err.value.rcvd is None  # no close frame: the socket just went away
        else:
            assert err.value.rcvd is not None and err.value.rcvd.code == code


async def test_stall_sends_no_frames_and_no_pings_until_cleared() -> None:
    async with (
        KalshiSim(config(ping_interval_s=0.05)) as sim,
        aiohttp.ClientSession() as s,
        s.ws_connect(sim.ws_url, headers=headers(), autoping=False) as ws,
    ):
        await ws.send_str(
            json.dumps({"id": 1, "cmd": "subscribe", "params": {"channels": ["ticker"]}})
        )
        kinds = set()
        while kinds != {aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.PING}:
            msg = await ws.receive(timeout=5)
            kinds.add(msg.type)
            if msg.type == aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
        sim.inject(Fault(FaultKind.STALL))
        await sim.step(500)
        await ws.ping(b"are you there")
        # Absence can only be shown by waiting: 0.5 s is 10 ping intervals.
        with pytest.raises(TimeoutError):
            msg = await ws.receive(timeout=0.5)
            pytest.fail(f"a stalled connection sent {msg.type}")
        assert sim.connections()[0]["stalled"] is True and not ws.closed
        sim.clear_faults()
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.PING, aiohttp.WSMsgType.PONG)


async def test_stall_seen_by_a_websockets_client() -> None:
    """The same stall through plain websockets: no frames, and our ping gets no pong."""
    async with KalshiSim(config()) as sim, client(sim) as c:
        await subscribed(sim, c)
        sim.inject(Fault(FaultKind.STALL, conn=1))
        await sim.step(300)
        pong = await c.ws.ping()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pong), 0.3)
        with pytest.raises(TimeoutError):
            await c.recv(timeout=0.2)
        sim.clear_faults()
        await asyncio.wait_for(pong, 5)  # answered once released
        assert (await c.recv())["sid"] in (1, 2)


async def test_malformed_frame_is_not_json() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        sim.inject(Fault(FaultKind.MALFORMED))
        text = await c.recv_text()
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        i = await c.send("list_subscriptions")  # the connection keeps working
        assert (await c.recv())["id"] == i


async def test_unknown_type_is_valid_json() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        await subscribed(sim, c)
        sim.inject(Fault(FaultKind.UNKNOWN_TYPE, after=5))
        await sim.step(100)
        frames = [json.loads(t) for t in await sent_after(sim, c)]
        odd = [i for i, f in enumerate(frames) if f["type"] not in KNOWN_TYPES]
        assert len(odd) == 1 and odd[0] >= 5  # fired after 5 more frames, not before


@pytest.mark.parametrize(
    ("kind", "code", "msg"),
    [
        (FaultKind.ERROR_25, 25, "Subscription buffer overflow"),
        (FaultKind.ERROR_17, 17, "Internal error"),
        (FaultKind.ERROR_10, 10, "Channel error"),
    ],
)
async def test_subscription_errors_drop_the_subscription(
    kind: FaultKind, code: int, msg: str
) -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        await subscribed(sim, c)
        sim.inject(Fault(kind))
        assert await c.recv() == {"type": "error", "sid": 1, "msg": {"code": code, "msg": msg}}
        assert [
            s["sid"] for s in (await c.response(await c.send("list_subscriptions")))["msg"]
        ] == [2]
        await sim.step(300)
        frames = [json.loads(t) for t in await sent_after(sim, c)]
        assert frames and {f["sid"] for f in frames} == {2}


async def test_error_fault_targets_a_sid() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c:
        await subscribed(sim, c)
        sim.inject(Fault(FaultKind.ERROR_25, sid=2))
        assert (await c.recv())["sid"] == 2


async def test_faults_given_at_start_hit_the_first_connection() -> None:
    async with KalshiSim(config(faults=[Fault.parse("unknown_type:1")])) as sim, client(sim) as c:
        assert (await c.recv())["type"] not in KNOWN_TYPES
        async with client(sim) as c2:  # consumed: the next connection is clean
            i = await c2.send("list_subscriptions")
            assert (await c2.recv())["id"] == i


async def test_slow_consumer_gets_error_25_and_engine_goes_on() -> None:
    """A client that stops reading fills its queue; its subscriptions are dropped with
    error 25 while another client keeps receiving."""
    cfg = config(
        paused=False, rate=20_000, markets=30, max_queue_frames=200, write_buffer_high=4096
    )
    async with KalshiSim(cfg) as sim:
        # A small receive buffer, so the kernel does not absorb megabytes first.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", sim.port))
        async with client(sim, sock=sock, max_queue=1) as slow, client(sim) as fast:
            await slow_consumer(sim, slow, fast)


async def slow_consumer(sim: KalshiSim, slow: Client, fast: Client) -> None:
    await slow.send("subscribe", {"channels": ["ticker", "trade"]})
    await slow.recv()  # acknowledged; from now on `slow` reads nothing
    await fast.send("subscribe", {"channels": ["market_lifecycle_v2"]})
    await fast.send("subscribe", {"channels": ["ticker"], "market_tickers": tickers(sim, 1)})
    async with asyncio.timeout(20):
        while sim.connections()[0]["overflows"] < 2:
            await fast.recv()  # the engine is not held back by the slow client
    before = sim.stats()["messages"]
    await fast.recv()
    assert sim.stats()["messages"] > before
    errors: list[Frame] = []
    async with asyncio.timeout(20):
        while len(errors) < 2:
            f = await slow.recv()
            if f["type"] == "error":
                errors.append(f)
    assert {e["sid"] for e in errors} == {1, 2}
    assert all(e["msg"] == {"code": 25, "msg": "Subscription buffer overflow"} for e in errors)
    assert sim.connections()[0]["subscriptions"] == []
    sim.pause()


async def test_rest_429() -> None:
    async with KalshiSim(config()) as sim, aiohttp.ClientSession() as s:
        sim.inject(Fault(FaultKind.REST_429, count=2))
        for _ in range(2):
            async with s.get(f"{sim.rest_url}/markets") as r:
                assert r.status == 429
                assert await r.json() == {"error": "too many requests"}
                assert "Retry-After" not in r.headers
                assert not any(h.lower().startswith("x-ratelimit") for h in r.headers)
        async with s.get(f"{sim.rest_url}/markets") as r:
            assert r.status == 200


async def test_admin_api_faults_connections_books_and_stepping() -> None:
    async with KalshiSim(config()) as sim, client(sim) as c, aiohttp.ClientSession() as s:
        ts = await subscribed(sim, c)
        admin = sim.admin_url

        async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
            async with s.request(method, admin + path, json=body) as r:
                return r.status, await r.json()

        status, conns = await call("GET", "/connections")
        assert status == 200
        (conn,) = conns["connections"]
        assert conn["conn"] == 1 and conn["authenticated"] is True
        assert [(x["sid"], x["channel"], x["markets"]) for x in conn["subscriptions"]] == [
            (1, "orderbook_delta", ts),
            (2, "ticker", ts),
        ]

        status, body = await call("POST", "/faults", {"kind": "skip_seq", "conn": None, "count": 1})
        assert status == 200 and body["faults"][0]["kind"] == "skip_seq"
        assert (await call("POST", "/faults", {"kind": "nope"}))[0] == 400
        assert (await call("POST", "/faults", {"kind": "close", "count": 0}))[0] == 400
        assert (await call("DELETE", "/faults"))[1] == {"faults": []}
        await call("POST", "/faults", {"kind": "skip_seq", "conn": 1})
        assert len((await call("GET", "/faults"))[1]["faults"]) == 1

        status, body = await call("POST", "/step", {"n": 200})
        assert status == 200 and body["messages"] >= 200
        await sent_after(sim, c)
        frames = [json.loads(t) for t in c.raw]
        seqs = [f["seq"] for f in frames if f.get("sid") == 1 and "seq" in f]
        assert 2 in {b - a for a, b in itertools.pairwise(seqs)}

        status, book = await call("GET", f"/books/{ts[0]}")
        assert status == 200 and book["book"] == sim.true_book(ts[0]).to_dict()
        status, books = await call("GET", "/books")
        assert {b["market_ticker"] for b in books["books"]} == {m.ticker for m in sim.markets}
        assert (await call("GET", "/books/NOPE-1"))[0] == 404

        assert (await call("GET", "/stats"))[1]["simulated"] is True


async def test_admin_pause_resume() -> None:
    async with KalshiSim(config()) as sim, aiohttp.ClientSession() as s:
        async with s.post(f"{sim.admin_url}/resume") as r:
            assert await r.json() == {"paused": False}
        assert not sim.paused
        async with s.post(f"{sim.admin_url}/pause") as r:
            assert await r.json() == {"paused": True}
        assert sim.paused
        async with s.post(f"{sim.admin_url}/step", json={"n": 0}) as r:
            assert r.status == 400


def test_fault_parsing() -> None:
    assert Fault.parse("skip_seq:3@100") == Fault(FaultKind.SKIP_SEQ, count=3, after=100)
    assert Fault.parse("close") == Fault(FaultKind.CLOSE)
    for bad in ("nope", "close:0", "close:x", "stall@-1"):
        with pytest.raises(ValueError):
            Fault.parse(bad)
    assert Fault.from_dict({"kind": "rest_429", "count": 5}).count == 5
    with pytest.raises(ValueError):
        Fault.from_dict({"kind": "close", "extra": 1})
