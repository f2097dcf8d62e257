"""The L2 book and the seam rules, against the protocol fixtures and generated streams."""

from __future__ import annotations

from decimal import Decimal

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.books import Book, BookBuilder, BookState, Checkpoint
from ssmd.feeds.kalshi.messages import (
    OrderbookDeltaFrame,
    OrderbookSnapshotFrame,
    parse_frame,
)

from .support import FIXTURES

D = Decimal
A, B, C = "KXBTCD-25DEC31-T100000", "INXD-25DEC31-B5000", "KXBTCD-25DEC31-T105000"


def _book_frames() -> list[OrderbookSnapshotFrame | OrderbookDeltaFrame]:
    out = []
    for line in (FIXTURES / "kalshi-fixtures.jsonl").read_bytes().splitlines():
        f = parse_frame(line)
        if isinstance(f, OrderbookSnapshotFrame | OrderbookDeltaFrame):
            out.append(f)
    return out


def _levels(d: dict[str, int]) -> dict[Decimal, Decimal]:
    return {D(p): D(q) for p, q in d.items()}


def test_fixture_replay_gives_the_stated_final_books() -> None:
    resyncs: list[tuple[int, list[str], str]] = []
    b = BookBuilder(on_resync=lambda conn, sid, t, r: resyncs.append((sid, t, r)))
    for i, f in enumerate(_book_frames(), start=1):
        b.apply(f, stream_seq=i)
    assert resyncs == [] and b.gaps == 0
    want = {
        A: ({"0.42": 120, "0.43": 100, "0.44": 55}, {"0.54": 400, "0.55": 100}),
        B: ({"0.18": 500, "0.19": 200}, {"0.78": 250, "0.79": 180}),
        C: ({"0.05": 1000}, {"0.92": 250}),
    }
    for t, (yes, no) in want.items():
        e = b.get(t)
        assert e is not None and e.state is BookState.LIVE
        assert e.book.yes == _levels(yes) and e.book.no == _levels(no), t
    a = b.get(A)
    assert a is not None
    assert a.book.best_yes_bid == D("0.44") and a.book.best_yes_ask == D("0.45")
    assert a.book.bids(2) == [(D("0.44"), D(55)), (D("0.43"), D(100))]
    assert a.book.asks() == [(D("0.45"), D(100)), (D("0.46"), D(400))]


def test_deltas_before_snapshot_are_buffered_never_published() -> None:
    frames = _book_frames()
    snap = next(f for f in frames if isinstance(f, OrderbookSnapshotFrame))
    b = BookBuilder()
    # A delta of a later sid seq arrives for a market with no snapshot yet.
    d = parse_frame(
        orjson.dumps(
            {
                "type": "orderbook_delta",
                "sid": 9,
                "seq": 1,
                "msg": {
                    "market_ticker": "X",
                    "price_dollars": "0.5",
                    "delta_fp": "5",
                    "side": "yes",
                },
            }
        )
    )
    assert isinstance(d, OrderbookDeltaFrame)
    assert b.apply(d) == []
    e = b.get("X")
    assert e is not None and e.state is BookState.PENDING and e.book.yes == {}
    assert b.apply(snap)[0].kind == "snapshot"


def _delta(
    sid: int, seq: int, t: str, price: str, delta: str, side: str = "yes"
) -> OrderbookDeltaFrame:
    f = parse_frame(
        orjson.dumps(
            {
                "type": "orderbook_delta",
                "sid": sid,
                "seq": seq,
                "msg": {
                    "market_ticker": t,
                    "price_dollars": price,
                    "delta_fp": delta,
                    "side": side,
                },
            }
        )
    )
    assert isinstance(f, OrderbookDeltaFrame)
    return f


def _snap(
    sid: int, seq: int, t: str, yes: list[list[str]], no: list[list[str]]
) -> OrderbookSnapshotFrame:
    msg: dict[str, object] = {"market_ticker": t}
    if yes:
        msg["yes_dollars_fp"] = yes
    if no:
        msg["no_dollars_fp"] = no
    f = parse_frame(
        orjson.dumps({"type": "orderbook_snapshot", "sid": sid, "seq": seq, "msg": msg})
    )
    assert isinstance(f, OrderbookSnapshotFrame)
    return f


def test_gap_marks_every_book_of_the_sid_stale_and_snapshot_resyncs() -> None:
    asked: list[tuple[int, list[str]]] = []
    b = BookBuilder(on_resync=lambda conn, sid, t, r: asked.append((sid, sorted(t))))
    b.apply(_snap(1, 1, "X", [["0.40", "10"]], [["0.50", "10"]]))
    b.apply(_snap(1, 2, "Y", [["0.30", "10"]], []))
    b.apply(_snap(2, 1, "Z", [["0.30", "10"]], []))
    ev = b.apply(_delta(1, 4, "X", "0.40", "1"))  # seq 3 lost
    assert {(e.kind, e.ticker) for e in ev} == {("stale", "X"), ("stale", "Y")}
    assert asked == [(1, ["X", "Y"])]
    assert b.books["Z"].state is BookState.LIVE
    assert b.books["X"].book.yes == {D("0.40"): D(10)}  # the gap-side delta is not applied
    ev = b.apply(_snap(1, 5, "X", [["0.41", "3"]], []))
    assert [e.kind for e in ev] == ["resynced", "snapshot"]
    assert b.books["X"].state is BookState.LIVE and b.books["Y"].state is BookState.STALE
    assert b.apply(_delta(1, 5, "X", "0.41", "1")) == []  # duplicate seq: ignored
    assert b.duplicates == 1


def test_crossed_or_negative_book_goes_stale_and_asks_for_resync() -> None:
    asked: list[list[str]] = []
    b = BookBuilder(on_resync=lambda conn, sid, t, r: asked.append(t))
    b.apply(_snap(1, 1, "X", [["0.40", "10"]], [["0.50", "10"]]))
    ev = b.apply(_delta(1, 2, "X", "0.40", "-11"))
    assert ev[0].kind == "stale" and "negative" in (ev[0].reason or "")
    b.apply(_snap(1, 3, "X", [["0.40", "10"]], [["0.50", "10"]]))
    ev = b.apply(_delta(1, 4, "X", "0.61", "5", side="no"))  # 0.40 + 0.61 >= 1
    assert ev[0].kind == "stale" and "crossed" in (ev[0].reason or "")
    assert asked == [["X"], ["X"]]


def test_checkpoint_roundtrip_and_seed_skips_included_frames() -> None:
    frames = _book_frames()
    full = BookBuilder()
    for i, f in enumerate(frames, start=1):
        full.apply(f, stream_seq=i)
    # Checkpoint A halfway, then a second builder starts from it and replays the rest.
    half = BookBuilder()
    cut = len(frames) // 2
    for i, f in enumerate(frames[:cut], start=1):
        half.apply(f, stream_seq=i)
    cps = [Checkpoint.from_json(e.checkpoint().to_json()) for e in half.books.values()]
    late = BookBuilder()
    for cp in cps:
        late.seed(cp)
    for i, f in enumerate(frames, start=1):  # replaying from the start is harmless too
        late.apply(f, stream_seq=i)
    for t, e in full.books.items():
        assert late.books[t].book == e.book, t
        assert late.books[t].state is BookState.LIVE


# -- property: a builder equals a plain dict model for any valid delta sequence ---------------

_prices = st.integers(min_value=1, max_value=49).map(lambda c: D(c) / 100)


@st.composite
def _ops(draw: st.DrawFn) -> list[tuple[str, Decimal, Decimal]]:
    # Bids below 0.5 on both sides can never cross; deltas never take a level negative.
    model: dict[str, dict[Decimal, Decimal]] = {"yes": {}, "no": {}}
    ops = []
    for _ in range(draw(st.integers(0, 60))):
        side = draw(st.sampled_from(["yes", "no"]))
        price = draw(_prices)
        cur = model[side].get(price, D(0))
        delta = D(draw(st.integers(min_value=-int(cur), max_value=50)))
        if delta == 0:
            continue
        model[side][price] = cur + delta
        ops.append((side, price, delta))
    return ops


@settings(max_examples=150, deadline=None)
@given(ops=_ops())
def test_any_valid_delta_sequence_matches_a_model(ops: list[tuple[str, Decimal, Decimal]]) -> None:
    b = BookBuilder()
    b.apply(_snap(1, 1, "X", [], []))
    model: dict[str, dict[Decimal, Decimal]] = {"yes": {}, "no": {}}
    for seq, (side, price, delta) in enumerate(ops, start=2):
        ev = b.apply(_delta(1, seq, "X", str(price), str(delta), side))
        assert ev and ev[0].kind == "delta"
        q = model[side].get(price, D(0)) + delta
        if q == 0:
            model[side].pop(price, None)
        else:
            model[side][price] = q
    book = b.books["X"].book
    assert book.yes == model["yes"] and book.no == model["no"]
    assert Checkpoint.from_json(b.books["X"].checkpoint().to_json()).book() == book
    assert all(q > 0 for q in book.yes.values())


def test_book_views_are_yes_perspective() -> None:
    bk = Book("X")
    bk.apply_snapshot([(D("0.30"), D(5)), (D("0.31"), D(1))], [(D("0.60"), D(2))])
    assert bk.best_yes_ask == D("0.40") and not bk.crossed
    assert bk.asks() == [(D("0.40"), D(2))]


def test_late_start_from_checkpoints_is_not_tainted_by_a_gap_before_them() -> None:
    """X's checkpoint was taken after the gap and its resync; Z's before. A builder started
    from both must end with both books live and right."""
    frames = [
        _snap(1, 1, "X", [["0.40", "10"]], []),
        _snap(1, 2, "Z", [["0.30", "10"]], []),
        _delta(1, 3, "Z", "0.30", "1"),
        # seq 4 lost
        _delta(1, 5, "X", "0.40", "1"),
        _snap(1, 6, "X", [["0.41", "7"]], []),  # resync
        _snap(1, 7, "Z", [["0.31", "8"]], []),  # resync
        _delta(1, 8, "Z", "0.31", "2"),
    ]
    live = BookBuilder()
    cps = {}
    for i, f in enumerate(frames, start=1):
        live.apply(f, stream_seq=i)
        if i == 2:
            cps["Z"] = live.books["Z"].checkpoint()
        if i == 5:
            cps["X"] = live.books["X"].checkpoint()
    late = BookBuilder()
    for cp in cps.values():
        late.seed(Checkpoint.from_json(cp.to_json()))
    start = min(cp.seq for cp in cps.values()) + 1
    for i, f in enumerate(frames, start=1):
        if i >= start:
            late.apply(f, stream_seq=i)
    for t in ("X", "Z"):
        assert late.books[t].state is BookState.LIVE, t
        assert late.books[t].book == live.books[t].book, t
