"""The connector's BookKeeper fed by the publisher's stored hook: order of acks, gaps, resyncs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from ssmd.books.builder import BookState
from ssmd.books.keeper import BookKeeper
from ssmd.connector.gaps import GapRecord
from ssmd.connector.spill import Record

T, U = "MKT-A", "MKT-B"


def _keeper() -> tuple[BookKeeper, list[tuple[str, int]]]:
    asked: list[tuple[str, int]] = []
    k = BookKeeper(None, "test", "kalshi", resync=lambda c, s, _t: asked.append((c, s)))  # type: ignore[arg-type]
    return k, asked


def _rec(doc: dict[str, Any], conn: str = "c1", kind: str = "orderbook") -> Record:
    t = doc["msg"]["market_ticker"]
    return Record(f"test.kalshi.json.{kind}.{t}", orjson.dumps(doc), "id", 0, conn)


def _snap(t: str, seq: int, sid: int = 1) -> dict[str, Any]:
    return {
        "type": "orderbook_snapshot",
        "sid": sid,
        "seq": seq,
        "msg": {"market_ticker": t, "yes_dollars_fp": [["0.4000", "10.00"]]},
    }


def _delta(t: str, seq: int, size: str, sid: int = 1) -> dict[str, Any]:
    return {
        "type": "orderbook_delta",
        "sid": sid,
        "seq": seq,
        "msg": {"market_ticker": t, "price_dollars": "0.4000", "delta_fp": size, "side": "yes"},
    }


def _yes(k: BookKeeper, t: str) -> Decimal | None:
    e = k.builder.get(t)
    assert e is not None
    return e.book.yes.get(Decimal("0.4"))


def test_stored_frames_build_books_with_their_stream_seq() -> None:
    k, asked = _keeper()
    k.on_stored(_rec(_snap(T, 1)), 10)
    k.on_stored(_rec({"type": "ticker", "msg": {"market_ticker": T}}, kind="ticker"), 11)
    k.on_stored(_rec(_delta(T, 2, "5.00")), 12)
    k.on_stored(_rec(_delta(T, 2, "5.00")), 12)  # a duplicate ack after a resend
    k._drain()
    e = k.builder.get(T)
    assert e is not None and e.state is BookState.LIVE
    assert _yes(k, T) == Decimal(15) and e.stream_seq == 12 and e.exchange_seq == 2
    assert e.checkpoint().seq == 12
    assert k.frames == 3 and not asked and k.builder.duplicates == 1


def test_a_frame_acked_after_later_ones_of_its_sid_makes_them_stale_and_resyncs() -> None:
    """X failed and was resent after Y had been stored: the ack of Y (new, stream seq 101)
    arrives after X's (stream seq 102). The book must not apply Y silently out of order."""
    k, asked = _keeper()
    k.on_stored(_rec(_snap(T, 1)), 99)
    k.on_stored(_rec(_delta(T, 2, "5.00")), 102)
    k.on_stored(_rec(_delta(T, 3, "1.00")), 101)
    k._drain()
    e = k.builder.get(T)
    assert e is not None and e.state is BookState.STALE
    assert asked == [("c1", 1)] and k.out_of_order == 1
    # The resync snapshot makes it live again.
    k.on_stored(_rec(_snap(T, 4)), 103)
    k._drain()
    assert e.state is BookState.LIVE and _yes(k, T) == Decimal(10)


def test_a_gap_the_client_did_not_report_asks_for_snapshots() -> None:
    k, asked = _keeper()
    k.on_stored(_rec(_snap(T, 1)), 1)
    k.on_stored(_rec(_snap(U, 2)), 2)
    # Stored out of exchange order (seq 4 before seq 3): a gap only the stream shows.
    k.on_stored(_rec(_delta(T, 4, "1.00")), 3)
    k.on_stored(_rec(_delta(U, 3, "1.00")), 4)
    k._drain()
    assert k.builder.get(T).state is BookState.STALE  # type: ignore[union-attr]
    assert asked == [("c1", 1)]


def test_a_gap_the_client_reported_is_not_asked_for_twice() -> None:
    k, asked = _keeper()
    k.on_stored(_rec(_snap(T, 1)), 1)
    k.on_gap(GapRecord(cause="seq_gap", conn="c1", sid=1, expected_seq=2, received_seq=5))
    k.on_stored(_rec(_delta(T, 5, "1.00")), 2)
    k._drain()
    assert k.builder.get(T).state is BookState.STALE  # type: ignore[union-attr]
    assert asked == []
    # sids are per connection: the same sid on another connection is its own subscription.
    k.on_stored(_rec(_snap(T, 1, sid=1), conn="c2"), 3)
    k.on_stored(_rec(_delta(T, 2, "1.00", sid=1), conn="c2"), 4)
    k._drain()
    assert k.builder.get(T).state is BookState.LIVE  # type: ignore[union-attr]
    assert _yes(k, T) == Decimal(11)


def test_deltas_before_the_snapshot_are_buffered_and_crossed_books_resync() -> None:
    k, asked = _keeper()
    k.on_stored(_rec(_snap(T, 1)), 1)
    k.on_stored(_rec(_delta(U, 2, "1.00")), 2)
    k._drain()
    assert k.builder.get(U).state is BookState.PENDING  # type: ignore[union-attr]
    k.on_stored(_rec(_snap(U, 3)), 3)
    k._drain()
    assert k.builder.get(U).state is BookState.LIVE and _yes(k, U) == Decimal(10)  # type: ignore[union-attr]
    cross = _delta(T, 4, "1.00")
    cross["msg"].update(side="no", price_dollars="0.7000")
    k.on_stored(_rec(cross), 4)
    k._drain()
    assert k.builder.get(T).state is BookState.STALE and asked == [("c1", 1)]  # type: ignore[union-attr]
