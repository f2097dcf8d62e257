"""NATS → books and client events.

Start-up: read the latest checkpoint of every market from ``{ENV}_{FEED}_BOOKS``, seed the
books with them, then follow the main stream with an ordered JetStream consumer from the
oldest checkpoint's sequence + 1 (frames a book already includes are skipped by the
builder). With no checkpoint at all, the whole stream is replayed: snapshots are in it.
A gateway started after the connector therefore serves correct books at once.

Events to clients are JSON (orjson). Prices are dollars as JSON numbers in the YES
perspective: bids are YES bids, asks are ``1 - NO bid``. Decimal → float happens only
here, at the edge (a 4-decimal price and a 2-decimal size are exact enough as doubles to
print back the same)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import orjson
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from ssmd import subjects
from ssmd.books.book import ONE
from ssmd.books.builder import BookBuilder, BookEvent, BookState, MarketBook
from ssmd.books.checkpoints import load_checkpoints
from ssmd.feeds.kalshi.messages import (
    EventLifecycleFrame,
    FrameParseError,
    MarketLifecycleFrame,
    OrderbookDeltaFrame,
    OrderbookSnapshotFrame,
    TickerFrame,
    TradeFrame,
    parse_frame,
)

log = logging.getLogger("ssmd.gateway.feed")

_dumps = orjson.dumps


def num(v: Decimal | None) -> float | None:
    return None if v is None else float(v)


def levels_json(levels: list[tuple[Decimal, Decimal]]) -> list[list[float]]:
    return [[float(p), float(q)] for p, q in levels]


TRADES_KEPT = 500
AGE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0, 5.0)


class Histogram:
    """Cumulative-at-scrape bucket counts; one bisect per observation, no locks."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, v: float) -> None:
        self.counts[bisect_left(self.bounds, v)] += 1
        self.sum += v


class Sink(Protocol):
    """Where the feed sends client events (the hub)."""

    def event(self, symbol: str, payload: bytes) -> None:
        """A message every subscriber of ``symbol`` gets, in every mode."""

    def state(self, symbol: str, kind: str, payload: bytes | None) -> None:
        """A state change: realtime clients get ``payload`` (when not None); conflated and
        latest clients get the newest rendering of (kind, symbol) when due."""


@dataclass
class MarketData:
    ticker: str
    # Recent trades for REST (bounded: memory must not grow with the number of trades).
    trades: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=TRADES_KEPT))
    ticker_msg: dict[str, Any] | None = None
    ticker_payload: bytes | None = None
    lifecycle: list[dict[str, Any]] = field(default_factory=list)
    book_version: int = 0
    book_payload: tuple[int, bytes] | None = None  # (version, rendered snapshot)


class GatewayFeed:
    def __init__(
        self,
        js: JetStreamContext,
        env: str,
        feed: str,
        sink: Sink,
        *,
        max_gaps: int = 1000,
    ) -> None:
        self._js, self.env, self.feed_name, self._sink = js, env, feed, sink
        self.builder = BookBuilder()
        self.markets: dict[str, MarketData] = {}
        self.gaps: deque[dict[str, Any]] = deque(maxlen=max_gaps)
        self.last_seq = 0
        self.frames = 0
        self.errors = 0
        self.started_seq = 0
        self.checkpoints_loaded = 0
        self.last_frame_at: float | None = None
        self._sub: Any = None
        self.ready = asyncio.Event()
        # Connector receive -> gateway, per frame (the upstream part of client latency).
        self.age = Histogram(AGE_BUCKETS)
        self.on_meta: Callable[[str], None] | None = None

    def market(self, ticker: str) -> MarketData:
        m = self.markets.get(ticker)
        if m is None:
            m = self.markets[ticker] = MarketData(ticker)
        return m

    # -- start-up ---------------------------------------------------------------------------

    async def start(self) -> None:
        cps = await load_checkpoints(self._js, self.env, self.feed_name)
        for cp in cps:
            self.builder.seed(cp)
            self.market(cp.ticker).book_version += 1
        self.checkpoints_loaded = len(cps)
        start = min((cp.seq for cp in cps), default=0) + 1
        self.started_seq = start
        if cps:
            await self._load_gaps(start)
        stream = subjects.stream_name(self.env, self.feed_name)
        self._sub = await self._js.subscribe(
            subjects.feed_wildcard(self.env, self.feed_name),
            stream=stream,
            cb=self._on_msg,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE if cps else DeliverPolicy.ALL,
                opt_start_seq=start if cps else None,
            ),
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )
        self.ready.set()
        log.info("gateway feed started: %d checkpoint(s), from stream seq %d", len(cps), start)

    async def _load_gaps(self, before: int) -> None:
        """Gap records older than where the feed starts, for ``/v1/meta/gaps`` (the books
        they concern are already past them: the checkpoints are newer)."""
        sub = await self._js.subscribe(
            subjects.gap_subject(self.env, self.feed_name),
            stream=subjects.stream_name(self.env, self.feed_name),
            ordered_consumer=True,
        )
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except TimeoutError:
                    break
                seq = msg.metadata.sequence.stream
                if seq >= before:
                    break
                with contextlib.suppress(orjson.JSONDecodeError):
                    rec = orjson.loads(msg.data)
                    if isinstance(rec, dict):
                        rec.setdefault("stream_seq", seq)
                        self.gaps.append(rec)
                if msg.metadata.num_pending == 0:
                    break
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    # -- messages ---------------------------------------------------------------------------

    async def _on_msg(self, msg: Msg) -> None:
        try:
            self.handle(msg.subject, msg.data, msg.metadata.sequence.stream, msg.headers)
        except Exception as exc:  # one bad frame must not stop the feed
            self.errors += 1
            log.warning("frame on %s not handled: %s", msg.subject, exc)

    def handle(
        self, subject: str, data: bytes, seq: int, headers: dict[str, str] | None = None
    ) -> None:
        self.last_seq = seq
        self.frames += 1
        self.last_frame_at = time.time()
        parts = subject.split(".")
        kind = parts[2] if len(parts) > 2 else ""
        recv_ns = None
        conn = ""
        if headers:
            conn = headers.get("Ssmd-Conn", "")
            with contextlib.suppress(ValueError, TypeError):
                recv_ns = int(headers.get("Ssmd-Recv-Ns", ""))
                self.age.observe((time.time_ns() - recv_ns) / 1e9)
        if kind == "json":
            if len(parts) != 5 or parts[3] == "control":
                return
            try:
                frame = parse_frame(data)
            except FrameParseError:
                self.errors += 1
                return
            if isinstance(frame, OrderbookSnapshotFrame | OrderbookDeltaFrame):
                self._book(frame, seq, recv_ns, conn)
            elif isinstance(frame, TradeFrame):
                self._trade(frame, seq, recv_ns)
            elif isinstance(frame, TickerFrame):
                self._ticker(frame, seq, recv_ns)
            elif isinstance(frame, MarketLifecycleFrame | EventLifecycleFrame):
                self._lifecycle(frame, data, seq, recv_ns)
        elif kind == "gap":
            self._gap(data, seq)
        elif kind == "meta" and self.on_meta is not None:
            with contextlib.suppress(subjects.SubjectError):
                t = subjects.parse_subject(subject).ticker
                if t:
                    self.on_meta(t)

    def _book(
        self,
        frame: OrderbookSnapshotFrame | OrderbookDeltaFrame,
        seq: int,
        recv_ns: int | None,
        conn: str,
    ) -> None:
        events = self.builder.apply(frame, seq, conn)
        for ev in events:
            self._book_event(ev, frame, seq, recv_ns)

    def _book_event(
        self,
        ev: BookEvent,
        frame: OrderbookSnapshotFrame | OrderbookDeltaFrame,
        seq: int,
        recv_ns: int | None,
    ) -> None:
        t = ev.ticker
        m = self.market(t)
        sink = self._sink
        if ev.kind == "delta" and isinstance(frame, OrderbookDeltaFrame):
            m.book_version += 1
            e = self.builder.books[t]
            p = frame.price
            if frame.side == "yes":
                change = ["bid", float(p), float(e.book.yes.get(p, 0))]
            else:
                change = ["ask", float(ONE - p), float(e.book.no.get(p, 0))]
            sink.state(
                t,
                "book",
                _dumps(
                    {
                        "type": "orderbook",
                        "symbol": t,
                        "action": "update",
                        "seq": seq,
                        "ts_ms": frame.ts_ms,
                        "recv_ns": recv_ns,
                        "changes": [change],
                    }
                ),
            )
        elif ev.kind == "snapshot":
            m.book_version += 1
            sink.state(t, "book", self.render_book(t))
        elif ev.kind == "stale":
            m.book_version += 1
            sink.event(
                t,
                _dumps(
                    {
                        "type": "notice",
                        "notice": "stale",
                        "symbol": t,
                        "reason": ev.reason,
                        "seq": seq,
                    }
                ),
            )
        elif ev.kind == "resynced":
            sink.event(t, _dumps({"type": "notice", "notice": "resynced", "symbol": t, "seq": seq}))

    def render_book(self, ticker: str, depth: int = 0) -> bytes | None:
        """The full book as a client ``orderbook`` snapshot; cached per book version."""
        e = self.builder.books.get(ticker)
        if e is None or e.state is BookState.PENDING:
            return None
        m = self.market(ticker)
        if depth == 0 and m.book_payload is not None and m.book_payload[0] == m.book_version:
            return m.book_payload[1]
        body = _dumps(self.book_dict(e, depth) | {"type": "orderbook", "action": "snapshot"})
        if depth == 0:
            m.book_payload = (m.book_version, body)
        return body

    def book_dict(self, e: MarketBook, depth: int = 0) -> dict[str, Any]:
        b = e.book
        return {
            "symbol": e.ticker,
            "seq": e.stream_seq,
            "ts_ms": e.ts_ms,
            "state": e.state.value,
            "stale": e.state is not BookState.LIVE,
            "stale_reason": e.stale_reason,
            "best_bid": num(b.best_yes_bid),
            "best_ask": num(b.best_yes_ask),
            "bids": levels_json(b.bids(depth)),
            "asks": levels_json(b.asks(depth)),
        }

    def _trade(self, f: TradeFrame, seq: int, recv_ns: int | None) -> None:
        t = f.market_ticker
        d = {
            "type": "trade",
            "symbol": t,
            "seq": seq,
            "trade_id": f.trade_id,
            "price": float(f.yes_price),
            "size": float(f.size),
            "taker_side": f.taker_outcome_side,
            "ts_ms": f.ts_ms,
            "recv_ns": recv_ns,
        }
        self.market(t).trades.append(d)
        self._sink.event(t, _dumps(d))

    def _ticker(self, f: TickerFrame, seq: int, recv_ns: int | None) -> None:
        t = f.market_ticker
        d = {
            "type": "ticker",
            "symbol": t,
            "seq": seq,
            "last_price": num(f.last_price),
            "bid": num(f.yes_bid),
            "ask": num(f.yes_ask),
            "bid_size": num(f.yes_bid_size),
            "ask_size": num(f.yes_ask_size),
            "volume": num(f.volume),
            "open_interest": num(f.open_interest),
            "ts_ms": f.ts_ms,
            "recv_ns": recv_ns,
        }
        m = self.market(t)
        m.ticker_msg = d
        m.ticker_payload = _dumps(d)
        self._sink.state(t, "ticker", m.ticker_payload)

    def _lifecycle(
        self,
        f: MarketLifecycleFrame | EventLifecycleFrame,
        raw: bytes,
        seq: int,
        recv_ns: int | None,
    ) -> None:
        msg = orjson.loads(raw).get("msg") or {}
        if isinstance(f, MarketLifecycleFrame):
            symbol, event = f.market_ticker, f.event_type
        else:
            symbol, event = f.event_ticker, "event_created"
        d = {"type": "lifecycle", "symbol": symbol, "event": event, "seq": seq, "recv_ns": recv_ns}
        d["data"] = msg
        m = self.market(symbol)
        m.lifecycle.append(d)
        del m.lifecycle[:-50]
        self._sink.event(symbol, _dumps(d))

    def _gap(self, data: bytes, seq: int) -> None:
        try:
            rec = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.errors += 1
            return
        if not isinstance(rec, dict):
            return
        rec.setdefault("stream_seq", seq)
        self.gaps.append(rec)
        markets = [m for m in rec.get("markets") or [] if isinstance(m, str)]
        sid = rec.get("sid") if isinstance(rec.get("sid"), int) else None
        before = rec.get("received_seq") if isinstance(rec.get("received_seq"), int) else None
        cause = str(rec.get("cause") or "gap")
        conn = rec.get("conn") if isinstance(rec.get("conn"), str) else None
        events = self.builder.mark_stale(
            markets, f"gap: {cause}", sid=sid, conn=conn, before_seq=before, at_stream_seq=seq
        )
        for ev in events:
            self.market(ev.ticker).book_version += 1
            self._sink.event(
                ev.ticker,
                _dumps(
                    {
                        "type": "notice",
                        "notice": "stale",
                        "symbol": ev.ticker,
                        "reason": ev.reason,
                        "seq": seq,
                    }
                ),
            )

    # -- queries ----------------------------------------------------------------------------

    def stale_books(self) -> list[str]:
        return sorted(t for t, e in self.builder.books.items() if e.state is BookState.STALE)
