"""Seam logic between the exchange's snapshot/delta stream and the books.

Rules (lessons.md, "Sequence and book integrity"):

* ``seq`` is per subscription (``sid``), shared by all its markets: a gap makes every book
  of that sid stale, and a resync is requested for all of them.
* Deltas that arrive before a market's snapshot (or while it is stale) are buffered; the
  snapshot drops those it already covers and applies the rest. A book is never built from
  deltas alone.
* A book that crosses or goes negative after a delta is stale and resynced.
* A duplicate (``seq`` ≤ last seen) is ignored.

The same builder runs in the connector (frames as received) and in the gateway (frames
replayed from JetStream after a checkpoint, see :meth:`BookBuilder.seed`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from ssmd.books.book import ZERO, Book, Checkpoint, Side
from ssmd.feeds.kalshi.messages import OrderbookDeltaFrame, OrderbookSnapshotFrame

log = logging.getLogger("ssmd.books")

EventKind = Literal["snapshot", "delta", "stale", "resynced"]
# (conn, sid, tickers, reason): ask the exchange for fresh snapshots of these markets.
ResyncCallback = Callable[[str, int, list[str], str], None]
# sids are per connection (shards reuse numbers): a subscription is (connection id, sid).
SubKey = tuple[str, int]


class BookState(StrEnum):
    PENDING = "pending"  # no snapshot yet: nothing may be published
    LIVE = "live"
    STALE = "stale"  # out of sync: waiting for a snapshot


@dataclass(slots=True)
class BookEvent:
    kind: EventKind
    ticker: str
    reason: str | None = None


@dataclass(slots=True)
class _Buffered:
    sub: SubKey
    seq: int
    stream_seq: int
    side: Side
    price: Decimal
    delta: Decimal
    ts_ms: int | None


@dataclass(slots=True)
class MarketBook:
    """A book plus where it stands in the stream."""

    book: Book
    state: BookState = BookState.PENDING
    sid: int | None = None
    conn: str = ""  # connection the sid belongs to (the frames' Ssmd-Conn header)
    exchange_seq: int | None = None  # seq of the last frame applied
    stream_seq: int = 0  # JetStream seq of the last frame included (0: not known)
    ts_ms: int | None = None
    stale_reason: str | None = None
    dirty: bool = False  # changed since the last checkpoint
    updates: int = 0
    buffer: list[_Buffered] = field(default_factory=list)

    @property
    def ticker(self) -> str:
        return self.book.ticker

    def checkpoint(self, published_ns: int | None = None) -> Checkpoint:
        return Checkpoint.of(
            self.book,
            seq=self.stream_seq,
            sid=self.sid,
            conn=self.conn,
            exchange_seq=self.exchange_seq,
            stale=self.state is not BookState.LIVE,
            ts_ms=self.ts_ms,
            published_ns=published_ns,
        )


class BookBuilder:
    """All books of one feed, keyed by ticker."""

    def __init__(
        self,
        *,
        on_resync: ResyncCallback | None = None,
        resync_on_gap: bool = True,
        max_buffer: int = 10_000,
    ) -> None:
        self.books: dict[str, MarketBook] = {}
        self._last_seq: dict[SubKey, int] = {}
        self._on_resync = on_resync
        # False where the reader of the socket already re-baselines a sid after a seq gap
        # (the connector's WS client does): one get_snapshot, not two.
        self._resync_on_gap = resync_on_gap
        self._max_buffer = max_buffer
        self.gaps = 0
        self.duplicates = 0
        self.invalid = 0

    def get(self, ticker: str) -> MarketBook | None:
        return self.books.get(ticker)

    def _entry(self, ticker: str) -> MarketBook:
        e = self.books.get(ticker)
        if e is None:
            e = self.books[ticker] = MarketBook(Book(ticker))
        return e

    # -- starting from a checkpoint ---------------------------------------------------------

    def seed(self, cp: Checkpoint) -> None:
        """Start a market from a checkpoint: frames up to ``cp.seq`` are already in it."""
        e = self._entry(cp.ticker)
        e.book = cp.book()
        e.sid, e.exchange_seq, e.stream_seq, e.ts_ms = cp.sid, cp.exchange_seq, cp.seq, cp.ts_ms
        e.conn = cp.conn
        e.state = BookState.STALE if cp.stale else BookState.LIVE
        e.stale_reason = "checkpoint was stale" if cp.stale else None
        e.buffer.clear()

    # -- frames ---------------------------------------------------------------------------

    def apply(
        self,
        frame: OrderbookSnapshotFrame | OrderbookDeltaFrame,
        stream_seq: int = 0,
        conn: str = "",
    ) -> list[BookEvent]:
        sid, seq = frame.sid, frame.seq
        key = (conn, sid)
        last = self._last_seq.get(key)
        events: list[BookEvent] = []
        if last is not None:
            if seq <= last:
                self.duplicates += 1
                return events
            if seq != last + 1:
                self.gaps += 1
                events.extend(
                    self.mark_sid_stale(
                        sid, f"seq gap on sid {sid}: {last} -> {seq}", conn, stream_seq
                    )
                )
        self._last_seq[key] = seq
        if isinstance(frame, OrderbookSnapshotFrame):
            events.extend(self._snapshot(frame, stream_seq, conn))
        else:
            events.extend(self._delta(frame, stream_seq, conn))
        return events

    def _snapshot(self, f: OrderbookSnapshotFrame, stream_seq: int, conn: str) -> list[BookEvent]:
        e = self._entry(f.market_ticker)
        if stream_seq and stream_seq <= e.stream_seq:
            return []  # already in the checkpoint this book started from
        was = e.state
        e.book.apply_snapshot(f.yes_levels, f.no_levels)
        e.sid, e.exchange_seq, e.stream_seq = f.sid, f.seq, stream_seq or e.stream_seq
        e.conn = conn
        e.state, e.stale_reason, e.dirty = BookState.LIVE, None, True
        e.updates += 1
        # Buffered deltas the snapshot does not cover (same sid, later seq) still apply.
        pending = [b for b in e.buffer if b.sub == (conn, f.sid) and b.seq > f.seq]
        e.buffer.clear()
        events = [BookEvent("resynced", e.ticker)] if was is BookState.STALE else []
        events.append(BookEvent("snapshot", e.ticker))
        for b in pending:
            if not self._apply_level(e, b.side, b.price, b.delta, b.seq, b.stream_seq, b.ts_ms):
                events.extend(self._invalid(e))
                break
        if not e.book.valid:
            events.extend(self._invalid(e, "snapshot is crossed or negative"))
        return events

    def _delta(self, f: OrderbookDeltaFrame, stream_seq: int, conn: str) -> list[BookEvent]:
        m = f.msg
        e = self.books.get(m.market_ticker)
        if e is None:
            e = self._entry(m.market_ticker)
        if stream_seq and stream_seq <= e.stream_seq:
            return []
        if e.state is BookState.LIVE and e.sid == f.sid and e.conn == conn:
            # The hot path (a live book's next delta), _apply_level inlined.
            price = m.price_dollars
            size = m.delta_fp
            book = e.book
            ok = book.apply_delta(
                m.side, f.price if price is None else price, f.size if size is None else size
            )
            e.exchange_seq = f.seq
            if stream_seq:
                e.stream_seq = stream_seq
            if m.ts_ms is not None:
                e.ts_ms = m.ts_ms
            e.dirty = True
            e.updates += 1
            # A live book is not crossed: only a delta that adds size can cross it.
            if not ok or ((size is None or size > ZERO) and book.crossed):
                return self._invalid(e)
            return [BookEvent("delta", e.ticker)]
        if e.state is not BookState.LIVE or e.sid != f.sid or e.conn != conn:
            if e.state is BookState.LIVE:  # a new subscription's delta before its snapshot
                return self._stale(e, f"delta from sid {f.sid}, book is from sid {e.sid}")
            if len(e.buffer) < self._max_buffer:
                e.buffer.append(
                    _Buffered((conn, f.sid), f.seq, stream_seq, f.side, f.price, f.size, f.ts_ms)
                )
            else:  # bounded: the snapshot will rebuild the book anyway
                e.buffer.clear()
            return []
        if not self._apply_level(e, f.side, f.price, f.size, f.seq, stream_seq, f.ts_ms):
            return self._invalid(e)
        return [BookEvent("delta", e.ticker)]

    def _apply_level(
        self,
        e: MarketBook,
        side: Side,
        price: Decimal,
        delta: Decimal,
        seq: int,
        stream_seq: int,
        ts_ms: int | None,
    ) -> bool:
        ok = e.book.apply_delta(side, price, delta)
        e.exchange_seq = seq
        if stream_seq:
            e.stream_seq = stream_seq
        if ts_ms is not None:
            e.ts_ms = ts_ms
        e.dirty = True
        e.updates += 1
        return ok and not e.book.crossed

    def _invalid(self, e: MarketBook, reason: str | None = None) -> list[BookEvent]:
        self.invalid += 1
        why = reason or ("negative level" if e.book.negative else "crossed book")
        return self._stale(e, why)

    def _stale(self, e: MarketBook, reason: str) -> list[BookEvent]:
        e.state, e.stale_reason, e.dirty = BookState.STALE, reason, True
        e.buffer.clear()
        log.info("book %s stale: %s", e.ticker, reason)
        if self._on_resync is not None and e.sid is not None:
            self._on_resync(e.conn, e.sid, [e.ticker], reason)
        return [BookEvent("stale", e.ticker, reason)]

    # -- external staleness ----------------------------------------------------------------

    def mark_sid_stale(
        self, sid: int, reason: str, conn: str = "", at_stream_seq: int = 0
    ) -> list[BookEvent]:
        """Every live book of ``sid`` goes stale (one gap taints the whole subscription).

        With ``at_stream_seq`` (where the gap was seen), a book that started from a later
        checkpoint is left alone: it is already past the gap (its resync snapshot, being
        before that checkpoint, will not be replayed to it)."""
        hit = [
            e
            for e in self.books.values()
            if e.sid == sid
            and e.conn == conn
            and e.state is BookState.LIVE
            and not (at_stream_seq and e.stream_seq >= at_stream_seq)
        ]
        for e in hit:
            e.state, e.stale_reason, e.dirty = BookState.STALE, reason, True
            e.buffer.clear()
        if hit:
            log.info("%d book(s) of sid %d stale: %s", len(hit), sid, reason)
            if self._on_resync is not None and self._resync_on_gap:
                self._on_resync(conn, sid, [e.ticker for e in hit], reason)
        return [BookEvent("stale", e.ticker, reason) for e in hit]

    def mark_stale(
        self,
        tickers: Iterable[str],
        reason: str,
        *,
        sid: int | None = None,
        conn: str | None = None,
        before_seq: int | None = None,
        at_stream_seq: int = 0,
    ) -> list[BookEvent]:
        """Mark books stale from outside (a gap record). With ``sid``, only books still on
        that subscription; with ``before_seq``, only those not yet past that seq (a record
        that arrives after the resync must not undo it). No resync is requested."""
        events: list[BookEvent] = []
        for t in tickers:
            e = self.books.get(t)
            if e is None or e.state is not BookState.LIVE:
                continue
            if sid is not None and e.sid != sid:
                continue
            if conn is not None and e.conn != conn:
                continue
            if (
                before_seq is not None
                and e.exchange_seq is not None
                and e.exchange_seq >= before_seq
            ):
                continue
            if at_stream_seq and e.stream_seq >= at_stream_seq:
                continue  # started from a checkpoint taken after this gap record
            e.state, e.stale_reason, e.dirty = BookState.STALE, reason, True
            events.append(BookEvent("stale", t, reason))
        return events

    def last_seq(self, conn: str, sid: int) -> int | None:
        """The exchange seq of the last frame seen on subscription (conn, sid)."""
        return self._last_seq.get((conn, sid))

    def forget_sid(self, sid: int, conn: str = "") -> None:
        """The subscription is gone (unsubscribed, reconnect): stop tracking its seq."""
        self._last_seq.pop((conn, sid), None)

    def dirty(self) -> list[MarketBook]:
        return [e for e in self.books.values() if e.dirty]
