"""End to end: simulator → connector (books + checkpoints) → JetStream → gateway → clients."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import aiohttp
from nats.aio.client import Client
from nats.js import JetStreamContext

from ssmd import subjects
from ssmd.books import Checkpoint
from ssmd.books.builder import BookState
from ssmd.connector.service import Connector
from ssmd.sim.kalshi import Fault, FaultKind, SimConfig, TrueBook
from ssmd.transport.server import EmbeddedNats

from .connector_support import connector_env, quiesce, rig, until
from .gateway_support import WsClient, start_gateway


def _cfg(tmp_path: Path, **kw: object) -> SimConfig:
    base: dict[str, object] = {
        "markets": 8,
        "rate": 1500,
        "record_frames": True,
        "lifecycle_interval_s": 0,
        "data_dir": tmp_path / "sim",
    }
    base.update(kw)
    return SimConfig(**base)  # type: ignore[arg-type]


def _levels(t: tuple[tuple[Decimal, Decimal], ...]) -> list[tuple[Decimal, Decimal]]:
    return list(t)


def _keeper_matches(c: Connector, truth: dict[str, TrueBook]) -> bool:
    assert c.books is not None
    for t, tb in truth.items():
        e = c.books.builder.get(t)
        if e is None or e.state is not BookState.LIVE:
            return False
        if e.book.levels("yes") != _levels(tb.yes) or e.book.levels("no") != _levels(tb.no):
            return False
    return True


def _client_matches(cl: WsClient, truth: dict[str, TrueBook]) -> bool:
    for t, tb in truth.items():
        bids = {float(p): float(q) for p, q in tb.yes}
        asks = {float(1 - p): float(q) for p, q in tb.no}
        if cl.books.get(t) != bids or cl.asks.get(t) != asks:
            return False
    return True


async def _rest_book(http: aiohttp.ClientSession, base: str, t: str) -> dict[str, object]:
    async with http.get(f"{base}/v1/markets/{t}/orderbook", params={"depth": "0"}) as r:
        assert r.status == 200, await r.text()
        body: dict[str, object] = await r.json()
        return body


def _rest_matches(body: dict[str, object], tb: TrueBook) -> bool:
    return body["bids"] == [[float(p), float(q)] for p, q in reversed(tb.yes)] and body["asks"] == [
        [float(1 - p), float(q)] for p, q in reversed(tb.no)
    ]


async def test_books_equal_the_true_books_after_trades_and_faults_and_late_gateway(
    tmp_path: Path, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext
) -> None:
    env = connector_env(bookCheckpointInterval="100ms")
    async with rig(tmp_path, nats_server.url, sim=_cfg(tmp_path), env=env) as (sim, c):
        early = await start_gateway(env, nats_server.url, tmp_path / "gw1")
        try:
            tickers = [m.ticker for m in sim.markets]
            cl = await WsClient.connect(f"{early.url}/v1/stream?symbols={','.join(tickers)}")
            await until(lambda: sum(s.frames for s in c.shards) > 300, 10, "frames")
            sim.inject(Fault(FaultKind.SKIP_SEQ))
            await until(lambda: c.stats.gaps.get("seq_gap", 0) >= 1, 10, "a seq gap")
            sim.inject(Fault(FaultKind.CLOSE))
            await until(lambda: sum(s.reconnects for s in c.shards) >= 1, 10, "a reconnect")
            await until(lambda: sum(s.frames for s in c.shards) > 1500, 15, "more frames")
            await quiesce(sim, c, nc)
            truth = sim.true_books()
            assert len(truth) == len(tickers)
            assert any(tb.yes or tb.no for tb in truth.values())
            # 1. The connector's own books.
            await until(lambda: _keeper_matches(c, truth), 10, "connector books = true books")
            # 2. A client that was connected all along.
            await until(lambda: _client_matches(cl, truth), 10, "client books = true books")
            assert cl.of("trade"), "the run had trades"
            assert cl.of("notice", notice="stale") and cl.of("notice", notice="resynced")
            # REST trades: the same trades the client saw, newest first.
            t0 = cl.of("trade")[0]["symbol"]
            seen = [e["trade_id"] for e in cl.of("trade", symbol=t0)]
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{early.http_url}/v1/markets/{t0}/trades", params={"limit": "500"}) as r,
            ):
                rest = (await r.json())["trades"]
            # (The gateway may also hold trades from before this client subscribed.)
            ids = [x["trade_id"] for x in rest]
            assert ids[: len(seen)] == seen[::-1][: len(ids)] and len(ids) >= min(len(seen), 500)
            # 3. Checkpoints: one per market, equal to the truth, with the seq of their frame.
            assert c.books is not None
            await c.books.checkpoints.flush()
            for t, tb in truth.items():
                m = await js.get_last_msg(
                    subjects.books_stream_name("test", "kalshi"),
                    subjects.book_subject("test", "kalshi", t),
                )
                cp = Checkpoint.from_json(m.data or b"")
                assert not cp.stale and cp.yes == _levels(tb.yes) and cp.no == _levels(tb.no)
                frame = await js.get_msg(subjects.stream_name("test", "kalshi"), cp.seq)
                assert frame.subject == subjects.json_subject("test", "kalshi", "orderbook", t)
        finally:
            await early.stop()
        # 4. A gateway started now serves correct books at once, from checkpoints.
        late = await start_gateway(env, nats_server.url, tmp_path / "gw2")
        try:
            assert late.feed.checkpoints_loaded == len(truth)
            # Gaps before the checkpoints are still listed.
            assert {g["cause"] for g in late.feed.gaps} >= {"seq_gap"}
            async with aiohttp.ClientSession() as http:
                base = late.url.replace("ws://", "http://")
                for t, tb in truth.items():
                    assert _rest_matches(await _rest_book(http, base, t), tb), t
            cl2 = await WsClient.connect(f"{late.url}/v1/stream?symbols={','.join(truth)}")
            await until(lambda: _client_matches(cl2, truth), 10, "late client books")
            await cl2.close()
        finally:
            await late.stop()


async def test_skip_seq_marks_books_stale_then_resynced_for_clients(
    tmp_path: Path, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext
) -> None:
    env = connector_env()
    async with rig(tmp_path, nats_server.url, sim=_cfg(tmp_path, rate=500), env=env) as (sim, c):
        gw = await start_gateway(env, nats_server.url, tmp_path / "gw")
        try:
            cl = await WsClient.connect(f"{gw.url}/v1/stream?symbols=*")
            await until(lambda: len(cl.of("orderbook")) > 50, 10, "book traffic")
            sim.inject(Fault(FaultKind.SKIP_SEQ))
            await until(lambda: bool(cl.of("notice", notice="stale")), 10, "stale notices")
            stale = {e["symbol"] for e in cl.of("notice", notice="stale")}
            await until(
                lambda: stale <= {e["symbol"] for e in cl.of("notice", notice="resynced")},
                10,
                "every stale book resynced",
            )
            # After the resync each book is served again and matches the truth.
            await quiesce(sim, c, nc)
            truth = sim.true_books()
            await until(lambda: _client_matches(cl, truth), 10, "books after resync")
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{gw.http_url}/v1/meta/gaps/kalshi") as r,
            ):
                gaps = (await r.json())["gaps"]
            assert gaps and gaps[0]["cause"] == "seq_gap"
        finally:
            await gw.stop()
