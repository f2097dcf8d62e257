"""Kalshi protocol parsing: WS frames, envelope decoder, command builders, REST models.

Fixtures: tests/fixtures/kalshi-fixtures.jsonl is a copy of the shared reference fixtures
(44 server frames of one session, reference section 9).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssmd.feeds.kalshi import messages as m
from ssmd.feeds.kalshi import rest_models as r

FIXTURES = Path(__file__).parent / "fixtures" / "kalshi-fixtures.jsonl"
LINES: list[bytes] = FIXTURES.read_bytes().splitlines()

A = "KXBTCD-25DEC31-T100000"
B = "INXD-25DEC31-B5000"
C = "KXBTCD-25DEC31-T105000"

D = Decimal

EXPECTED_CLASS: dict[str, type] = {
    "subscribed": m.SubscribedFrame,
    "unsubscribed": m.UnsubscribedFrame,
    "ok": m.OkFrame,
    "error": m.ErrorFrame,
    "orderbook_snapshot": m.OrderbookSnapshotFrame,
    "orderbook_delta": m.OrderbookDeltaFrame,
    "ticker": m.TickerFrame,
    "trade": m.TradeFrame,
    "market_lifecycle_v2": m.MarketLifecycleFrame,
    "event_lifecycle": m.EventLifecycleFrame,
}


def frames() -> list[m.Frame]:
    return [m.parse_frame(line) for line in LINES]


def by_seq(seq: int) -> m.Frame:
    (frame,) = [f for f in frames() if f.sid == 1 and f.seq == seq]
    return frame


def book(yes: dict[str, str], no: dict[str, str]) -> dict[str, dict[Decimal, Decimal]]:
    return {
        "yes": {D(p): D(s) for p, s in yes.items()},
        "no": {D(p): D(s) for p, s in no.items()},
    }


# --------------------------------------------------------------------------------------------
# Every fixture line
# --------------------------------------------------------------------------------------------


def test_fixture_file_has_44_frames() -> None:
    assert len(LINES) == 44


@pytest.mark.parametrize("lineno", range(len(LINES)))
def test_every_fixture_line_parses_to_its_model(lineno: int) -> None:
    line = LINES[lineno]
    wire_type = json.loads(line)["type"]
    frame = m.parse_frame(line)
    assert type(frame) is EXPECTED_CLASS[wire_type]
    assert frame.type == wire_type
    # str input works the same as bytes
    assert m.parse_frame(line.decode()) == frame


@pytest.mark.parametrize("lineno", range(len(LINES)))
def test_envelope_agrees_with_full_parser(lineno: int) -> None:
    line = LINES[lineno]
    env = m.decode_envelope(line)
    frame = m.parse_frame(line)
    raw = json.loads(line)
    assert env.type == frame.type
    assert env.id == frame.id == raw.get("id")
    assert env.sid == frame.sid
    assert env.seq == frame.seq == raw.get("seq")
    assert env.market_ticker == frame.market_ticker
    assert env.ts_ms == frame.ts_ms
    assert env.sending_ts_ms == frame.sending_ts_ms == raw.get("sending_ts_ms")
    msg = raw.get("msg")
    assert env.ts_ms == (msg.get("ts_ms") if isinstance(msg, dict) else None)


def test_fixture_values_snapshots() -> None:
    s1 = by_seq(1)
    assert isinstance(s1, m.OrderbookSnapshotFrame)
    assert s1.market_ticker == A
    assert s1.market_id == "5f1c2a9e-8d43-4b7a-9c61-2e0f7b3d9a14"
    assert s1.yes_levels == [
        (D("0.4100"), D("250.00")),
        (D("0.4200"), D("120.00")),
        (D("0.4300"), D("80.00")),
    ]
    assert s1.no_levels == [
        (D("0.5400"), D("300.00")),
        (D("0.5500"), D("150.00")),
        (D("0.5600"), D("60.00")),
    ]
    # exact text survives: Decimal keeps the 4/2 decimals of the wire
    assert str(s1.yes_levels[0][0]) == "0.4100" and str(s1.yes_levels[0][1]) == "250.00"
    s14 = by_seq(14)
    assert isinstance(s14, m.OrderbookSnapshotFrame)
    assert s14.market_ticker == C
    assert s14.msg.no_dollars_fp is None  # key missing on the wire
    assert s14.no_levels == []  # = empty side
    assert s14.yes_levels == [(D("0.0500"), D("1000.00")), (D("0.0600"), D("400.00"))]


def test_fixture_values_deltas() -> None:
    d3 = by_seq(3)
    assert isinstance(d3, m.OrderbookDeltaFrame)
    assert (d3.market_ticker, d3.side, d3.price, d3.size) == (A, "yes", D("0.4300"), D("20.00"))
    assert d3.ts_ms == 1767211201200
    assert d3.msg.ts == "2025-12-31T20:00:01.200Z"
    assert d3.timestamp_ms == 1767211201200
    assert d3.client_order_id is None
    d4 = by_seq(4)
    assert isinstance(d4, m.OrderbookDeltaFrame)
    assert (d4.side, d4.price, d4.size) == ("no", D("0.5600"), D("-60.00"))
    d12 = by_seq(12)
    assert isinstance(d12, m.OrderbookDeltaFrame)
    assert d12.client_order_id == "mm-7f3a-000123"
    assert (d12.price, d12.size) == (D("0.4400"), D("15.00"))


def test_fixture_values_ticker_and_trade() -> None:
    tickers = [f for f in frames() if isinstance(f, m.TickerFrame)]
    assert len(tickers) == 6
    t = tickers[0]
    assert t.market_ticker == A
    assert t.msg.market_id == "5f1c2a9e-8d43-4b7a-9c61-2e0f7b3d9a14"
    assert t.last_price == D("0.4300")
    assert (t.yes_bid, t.yes_ask) == (D("0.4300"), D("0.4400"))
    assert (t.yes_bid_size, t.yes_ask_size) == (D("80.00"), D("60.00"))
    assert (t.volume, t.open_interest) == (D("12500.00"), D("8200.00"))
    assert t.last_trade_size == D("10.00")
    assert (t.msg.dollar_volume, t.msg.dollar_open_interest) == (5310, 3526)
    assert (t.msg.ts, t.ts_ms, t.sending_ts_ms) == (1767211200, 1767211200060, 1767211200063)
    assert t.msg.time == "2025-12-31T20:00:00.060Z"
    assert t.sid == 2 and t.seq is None

    trades = [f for f in frames() if isinstance(f, m.TradeFrame)]
    assert len(trades) == 2
    ta, tb = trades
    assert ta.trade_id == "8b0d2c54-1f6e-4a3b-9d27-6c0e5f1a7b93"
    assert ta.market_ticker == A
    assert (ta.yes_price, ta.no_price, ta.price, ta.size) == (
        D("0.4500"),
        D("0.5500"),
        D("0.4500"),
        D("50.00"),
    )
    assert (ta.taker_outcome_side, ta.taker_book_side) == ("yes", "bid")
    assert ta.msg.is_block_trade is False
    assert ta.ts_ms == 1767211204000 and ta.timestamp_ms == 1767211204000
    assert tb.market_ticker == B
    assert (tb.yes_price, tb.no_price, tb.size) == (D("0.2000"), D("0.8000"), D("60.00"))
    assert (tb.taker_outcome_side, tb.taker_book_side) == ("no", "ask")
    assert tb.yes_price + tb.no_price == 1


def test_fixture_values_lifecycle() -> None:
    fs = frames()
    (ev,) = [f for f in fs if isinstance(f, m.EventLifecycleFrame)]
    assert ev.event_ticker == "KXBTCD-26JAN01"
    assert ev.msg.title == "Bitcoin price on Jan 1, 2026?"
    assert ev.msg.subtitle == "Jan 1, 2026 at 5pm EST"
    assert ev.msg.collateral_return_type == ""
    assert ev.msg.series_ticker == "KXBTCD"
    assert ev.msg.strike_date == 1767304800
    assert ev.market_ticker is None

    life = [f for f in fs if isinstance(f, m.MarketLifecycleFrame)]
    assert [f.event_type for f in life] == [
        "created",
        "activated",
        "deactivated",
        "activated",
        "determined",
        "settled",
    ]
    created, activated, paused, unpaused, determined, settled = life
    assert created.market_ticker == C
    cm = created.msg
    assert (cm.open_ts, cm.close_ts) == (1767211209, 1767218400)
    assert cm.price_level_structure == "linear_cent"
    assert cm.price_ranges == [m.PriceRange(start=D("0"), end=D("1"), step=D("0.01"))]
    assert cm.price_ranges is not None and str(cm.price_ranges[0].step) == "0.0100"
    md = cm.additional_metadata
    assert md is not None
    assert md.event_ticker == "KXBTCD-25DEC31"
    assert md.floor_strike == D("104999.99")  # JSON number, exact as Decimal
    assert md.can_close_early is False
    assert md.expected_expiration_ts == 1767218700
    assert md.strike_type == "greater"
    assert md.yes_sub_title == "$105,000 or above"
    assert activated.msg.is_deactivated is None
    assert (paused.market_ticker, paused.msg.is_deactivated) == (B, True)
    assert unpaused.msg.is_deactivated is False
    assert determined.msg.result == "yes"
    assert determined.msg.determination_ts == 1767211262
    assert determined.msg.settlement_value == D("1.0000")
    assert settled.msg.settled_ts == 1767211290
    assert settled.market_ticker == "KXBTCD-25DEC3115-T99999.99"


def test_fixture_values_responses() -> None:
    fs = frames()
    subs = [f for f in fs if isinstance(f, m.SubscribedFrame)]
    assert [(f.id, f.channel, f.sid) for f in subs] == [
        (1, "orderbook_delta", 1),
        (2, "ticker", 2),
        (2, "trade", 3),
        (3, "market_lifecycle_v2", 4),
    ]
    oks = [f for f in fs if isinstance(f, m.OkFrame)]
    add, listed = oks
    assert (add.id, add.sid, add.seq) == (4, 1, None)
    assert add.market_tickers == [A, B, C]
    assert add.subscriptions is None
    assert listed.id == 8 and listed.market_tickers is None
    assert listed.subscriptions == [
        m.SubscriptionInfo(channel="orderbook_delta", sid=1),
        m.SubscriptionInfo(channel="ticker", sid=2),
        m.SubscriptionInfo(channel="trade", sid=3),
        m.SubscriptionInfo(channel="market_lifecycle_v2", sid=4),
    ]
    errors = [f for f in fs if isinstance(f, m.ErrorFrame)]
    assert [(e.id, e.code, e.message, e.market_ticker) for e in errors] == [
        (5, 8, "Unknown channel name", None),
        (6, 16, "Market not found", "KXBTCD-25DEC31-T999999"),
        (7, 12, "Exactly one subscription ID is required", None),
    ]
    for e in errors:
        assert e.info.name == e.message  # the table agrees with what the server says
        assert not e.is_terminal
    (unsub,) = [f for f in fs if isinstance(f, m.UnsubscribedFrame)]
    assert (unsub.id, unsub.sid, unsub.seq) == (10, 1, 20)


# --------------------------------------------------------------------------------------------
# Replay of sid 1 (reference section 9)
# --------------------------------------------------------------------------------------------


Books = dict[str, dict[str, dict[Decimal, Decimal]]]


def _check_ticker_matches(books: Books, t: m.TickerFrame) -> None:
    bk = books[t.market_ticker]
    best_yes = max(bk["yes"])
    best_no = max(bk["no"])
    assert t.yes_bid == best_yes and t.yes_bid_size == bk["yes"][best_yes]
    assert t.yes_ask == 1 - best_no and t.yes_ask_size == bk["no"][best_no]


def test_replay_sid1_gives_the_reference_final_books() -> None:
    books: Books = {}
    last_seq = 0
    rebaselines = 0
    for f in frames():
        if isinstance(f, m.OrderbookSnapshotFrame | m.OrderbookDeltaFrame) and f.sid == 1:
            assert f.seq == last_seq + 1, "one gapless seq stream per sid"
            last_seq = f.seq
        if isinstance(f, m.OrderbookSnapshotFrame):
            new = {"yes": dict(f.yes_levels), "no": dict(f.no_levels)}
            if f.market_ticker in books:
                # the get_snapshot re-baseline must equal what the deltas built
                assert books[f.market_ticker] == new
                rebaselines += 1
            books[f.market_ticker] = new
        elif isinstance(f, m.OrderbookDeltaFrame):
            side = books[f.market_ticker][f.side]
            level = side.get(f.price, D(0)) + f.size
            assert level >= 0
            if level == 0:
                del side[f.price]
            else:
                side[f.price] = level
        elif isinstance(f, m.TickerFrame):
            _check_ticker_matches(books, f)
        elif isinstance(f, m.UnsubscribedFrame):
            assert f.seq == last_seq + 1
    assert last_seq == 19 and rebaselines == 1
    assert books == {
        A: book({"0.42": "120", "0.43": "100", "0.44": "55"}, {"0.54": "400", "0.55": "100"}),
        B: book({"0.18": "500", "0.19": "200"}, {"0.78": "250", "0.79": "180"}),
        C: book({"0.05": "1000"}, {"0.92": "250"}),
    }


# --------------------------------------------------------------------------------------------
# Reference examples (sections 2 and 3) and legacy integer-cent frames
# --------------------------------------------------------------------------------------------

MID = "9b0f6b43-5b68-4f9f-9f02-9a2d1b8ac1a1"

SNAPSHOT_CURRENT = (
    '{"type": "orderbook_snapshot", "sid": 2, "seq": 2, "msg": {'
    '"market_ticker": "FED-23DEC-T3.00", "market_id": "' + MID + '",'
    '"yes_dollars_fp": [["0.0800", "300.00"], ["0.2200", "333.00"]],'
    '"no_dollars_fp":  [["0.5400", "20.00"],  ["0.5600", "146.00"]]}}'
)
SNAPSHOT_TRANSITIONAL = (  # the 2026-03-03 page: cents, dollars with int counts, and _fp
    '{"type":"orderbook_snapshot","sid":2,"seq":2,"msg":{"market_ticker":"FED-23DEC-T3.00",'
    '"market_id":"' + MID + '","yes":[[8,300],[22,333]],"no":[[54,20],[56,146]],'
    '"yes_dollars":[["0.080",300],["0.220",333]],"no_dollars":[["0.540",20],["0.560",146]],'
    '"yes_dollars_fp":[["0.0800","300.00"],["0.2200","333.00"]],'
    '"no_dollars_fp":[["0.5400","20.00"],["0.5600","146.00"]]}}'
)
SNAPSHOT_CENTS = (
    '{"type":"orderbook_snapshot","sid":2,"seq":2,"msg":{"market_ticker":"FED-23DEC-T3.00",'
    '"yes":[[22,333],[8,300]],"no":[[54,20],[56,146]]}}'
)
SNAPSHOT_LEGACY_DOLLARS = (
    '{"type":"orderbook_snapshot","sid":2,"seq":2,"msg":{"market_ticker":"FED-23DEC-T3.00",'
    '"yes_dollars":[["0.080",300],["0.220",333]],"no_dollars":[["0.540",20],["0.560",146]]}}'
)

DELTA_CURRENT = (
    '{"type": "orderbook_delta", "sid": 2, "seq": 3, "msg": {'
    '"market_ticker": "FED-23DEC-T3.00", "market_id": "' + MID + '",'
    '"price_dollars": "0.960", "delta_fp": "-54.00", "side": "yes",'
    '"ts": "2022-11-22T20:44:01Z", "ts_ms": 1669149841000}}'
)
DELTA_CENTS = (
    '{"type":"orderbook_delta","sid":2,"seq":3,"msg":{"market_ticker":"FED-23DEC-T3.00",'
    '"market_id":"' + MID + '","price":96,"delta":-54,"side":"yes","ts":"2022-11-22T20:44:01Z"}}'
)
DELTA_TRANSITIONAL = (
    '{"type":"orderbook_delta","sid":2,"seq":3,"msg":{"market_ticker":"FED-23DEC-T3.00",'
    '"price":96,"price_dollars":"0.960","delta":-54,"delta_fp":"-54.00","side":"yes"}}'
)

TICKER_CURRENT = (
    '{"type": "ticker", "sending_ts_ms": 1669149841123, "sid": 11, "msg": {'
    '"market_id": "' + MID + '", "market_ticker": "FED-23DEC-T3.00",'
    '"price_dollars": "0.4800", "yes_bid_dollars": "0.4500", "yes_ask_dollars": "0.5300",'
    '"volume_fp": "33896.00", "open_interest_fp": "20422.00",'
    '"dollar_volume": 16948, "dollar_open_interest": 10211,'
    '"yes_bid_size_fp": "300.00", "yes_ask_size_fp": "150.00", "last_trade_size_fp": "25.00",'
    '"ts": 1669149841, "ts_ms": 1669149841000, "time": "2022-11-22T20:44:01Z"}}'
)
TICKER_CENTS = (  # 2025 production shape: integer cents, Clock, no ts_ms
    '{"type":"ticker","sid":11,"msg":{"market_ticker":"FED-23DEC-T3.00","market_id":"' + MID + '",'
    '"price":48,"yes_bid":45,"yes_ask":53,"volume":33896,"open_interest":20422,'
    '"dollar_volume":16948,"dollar_open_interest":10211,"ts":1669149841,"Clock":6123456789}}'
)

TRADE_CURRENT = (
    '{"type": "trade", "sid": 11, "msg": {'
    '"trade_id": "d91bc706-ee49-470d-82d8-11418bda6fed", "market_ticker": "HIGHNY-22DEC23-B53.5",'
    '"yes_price_dollars": "0.360", "no_price_dollars": "0.640", "count_fp": "136.00",'
    '"taker_side": "no", "taker_outcome_side": "no", "taker_book_side": "ask",'
    '"is_block_trade": false, "ts": 1669149841, "ts_ms": 1669149841000}}'
)
TRADE_CENTS = (
    '{"type":"trade","sid":11,"msg":{"trade_id":"d91bc706-ee49-470d-82d8-11418bda6fed",'
    '"market_ticker":"HIGHNY-22DEC23-B53.5","yes_price":36,"no_price":64,"count":136,'
    '"taker_side":"no","ts":1669149841}}'
)


def test_legacy_snapshots_normalize_to_the_current_values() -> None:
    current = m.parse_frame(SNAPSHOT_CURRENT)
    assert isinstance(current, m.OrderbookSnapshotFrame)
    yes = [(D("0.08"), D(300)), (D("0.22"), D(333))]
    no = [(D("0.54"), D(20)), (D("0.56"), D(146))]
    assert (current.yes_levels, current.no_levels) == (yes, no)
    for text in (SNAPSHOT_TRANSITIONAL, SNAPSHOT_CENTS, SNAPSHOT_LEGACY_DOLLARS):
        f = m.parse_frame(text)
        assert isinstance(f, m.OrderbookSnapshotFrame)
        assert (f.yes_levels, f.no_levels) == (yes, no), text
        assert (f.sid, f.seq, f.market_ticker) == (2, 2, "FED-23DEC-T3.00")
    cents = m.parse_frame(SNAPSHOT_CENTS)
    assert isinstance(cents, m.OrderbookSnapshotFrame)
    assert cents.msg.legacy_yes == [(22, 333), (8, 300)]  # raw kept; accessor sorts
    assert cents.market_id is None


def test_legacy_deltas_normalize_to_the_current_values() -> None:
    expected = ("FED-23DEC-T3.00", "yes", D("0.96"), D(-54))
    for text in (DELTA_CURRENT, DELTA_CENTS, DELTA_TRANSITIONAL):
        f = m.parse_frame(text)
        assert isinstance(f, m.OrderbookDeltaFrame)
        assert (f.market_ticker, f.side, f.price, f.size) == expected, text
    cents = m.parse_frame(DELTA_CENTS)
    assert isinstance(cents, m.OrderbookDeltaFrame)
    assert cents.msg.legacy_price == 96 and cents.msg.legacy_delta == -54
    assert cents.ts_ms is None
    assert cents.timestamp_ms == 1669149841000  # from the RFC3339 ts
    assert m.decode_envelope(DELTA_CENTS.encode()).ts_ms is None


def test_legacy_ticker_normalizes_to_the_current_values() -> None:
    cur = m.parse_frame(TICKER_CURRENT)
    old = m.parse_frame(TICKER_CENTS)
    assert isinstance(cur, m.TickerFrame) and isinstance(old, m.TickerFrame)
    for f in (cur, old):
        assert f.last_price == D("0.48")
        assert (f.yes_bid, f.yes_ask) == (D("0.45"), D("0.53"))
        assert (f.volume, f.open_interest) == (D(33896), D(20422))
        assert f.timestamp_ms == 1669149841000
    assert cur.sending_ts_ms == 1669149841123
    assert old.msg.legacy_clock == 6123456789
    assert old.ts_ms is None and old.yes_bid_size is None


@pytest.mark.parametrize(
    ("price_fields", "expected"),
    [
        ('"price_dollars":""', None),
        ('"price_dollars":"0.0000"', None),
        ('"price":0', None),
        ('"price":0,"price_dollars":""', None),
        ("", None),
        ('"price_dollars":"0.0100"', D("0.01")),
    ],
)
def test_ticker_without_a_last_trade(price_fields: str, expected: Decimal | None) -> None:
    sep = "," if price_fields else ""
    text = '{"type":"ticker","sid":1,"msg":{"market_ticker":"X"' + sep + price_fields + "}}"
    f = m.parse_frame(text)
    assert isinstance(f, m.TickerFrame)
    assert f.last_price == expected


def test_legacy_trade_normalizes_to_the_current_values() -> None:
    for text in (TRADE_CURRENT, TRADE_CENTS):
        f = m.parse_frame(text)
        assert isinstance(f, m.TradeFrame)
        assert f.market_ticker == "HIGHNY-22DEC23-B53.5"
        assert (f.yes_price, f.no_price, f.size) == (D("0.36"), D("0.64"), D(136))
        # legacy frames have only taker_side; book side is derived (no == ask)
        assert (f.taker_outcome_side, f.taker_book_side) == ("no", "ask")
        assert f.timestamp_ms == 1669149841000
    only_price = m.parse_frame(
        '{"type":"trade","sid":1,"msg":{"trade_id":"t","market_ticker":"X","price":36,"count":2}}'
    )
    assert isinstance(only_price, m.TradeFrame)
    assert (only_price.yes_price, only_price.no_price) == (D("0.36"), D("0.64"))


REFERENCE_FRAMES: list[tuple[str, type]] = [
    (
        '{"id": 1, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 1}}',
        m.SubscribedFrame,
    ),
    ('{"id": 102, "sid": 2, "seq": 7, "type": "unsubscribed"}', m.UnsubscribedFrame),
    (
        '{"id": 123, "sid": 456, "seq": 222, "type": "ok", "msg": {"market_tickers": ["MARKET-1", "MARKET-2", "MARKET-3"]}}',
        m.OkFrame,
    ),
    (
        '{"id": 3, "type": "ok", "msg": [{"channel": "orderbook_delta", "sid": 1}, {"channel": "ticker", "sid": 2}, {"channel": "fill", "sid": 3}]}',
        m.OkFrame,
    ),
    ('{"id": 123, "type": "error", "msg": {"code": 6, "msg": "Already subscribed"}}', m.ErrorFrame),
    (
        '{"id": 7, "type": "error", "msg": {"code": 16, "msg": "Market not found", "market_ticker": "INVALID-MARKET"}}',
        m.ErrorFrame,
    ),
    (SNAPSHOT_CURRENT, m.OrderbookSnapshotFrame),
    (DELTA_CURRENT, m.OrderbookDeltaFrame),
    (TICKER_CURRENT, m.TickerFrame),
    (TRADE_CURRENT, m.TradeFrame),
    (
        '{"type":"ticker_v2","sid":11,"msg":{"market_ticker":"FED-23DEC-T3.00","market_id":"'
        + MID
        + '",'
        '"price":48,"price_dollars":"0.480","volume_delta":100,"volume_delta_fp":"100.00",'
        '"open_interest_delta":10,"open_interest_delta_fp":"10.00","dollar_volume_delta":50,'
        '"dollar_open_interest_delta":5,"ts":1669149841}}',
        m.TickerV2Frame,
    ),
    (
        '{"type":"market_lifecycle_v2","sid":13,"msg":{"market_ticker":"INXD-23SEP14-B4487","event_type":"created",'
        '"open_ts":1694635200,"close_ts":1694721600,"fractional_trading_enabled":false,'
        '"price_level_structure":"linear_cent","additional_metadata":{"name":"S&P 500 daily return on Sep 14",'
        '"title":"S&P 500 closes up by 0.02% or more","yes_sub_title":"S&P 500 closes up 0.02%+",'
        '"no_sub_title":"S&P 500 closes up <0.02%","rules_primary":"The S&P 500 index level at 4:00 PM ET...",'
        '"rules_secondary":"","can_close_early":true,"event_ticker":"INXD-23SEP14",'
        '"expected_expiration_ts":1694721600,"strike_type":"greater","floor_strike":4487}}}',
        m.MarketLifecycleFrame,
    ),
    (
        '{"type":"multivariate_market_lifecycle","sid":14,"msg":{"market_ticker":"KXMVE-X","event_type":"determined",'
        '"result":"no","determination_ts":1694721600,"settlement_value":"0.0000"}}',
        m.MultivariateMarketLifecycleFrame,
    ),
    (
        '{"type":"event_lifecycle","sid":5,"msg":{"event_ticker":"KXQUICKSETTLE-26JAN25H2150",'
        '"title":"What will 1+1 equal on Jan 25 at 21:50?","subtitle":"Jan 25 at 21:50",'
        '"collateral_return_type":"MECNET","series_ticker":"KXQUICKSETTLE"}}',
        m.EventLifecycleFrame,
    ),
    (
        '{"type":"event_fee_update","sid":5,"msg":{"event_ticker":"KXBTCD-26MAY2018",'
        '"fee_type_override":"quadratic","fee_multiplier_override":1}}',
        m.EventFeeUpdateFrame,
    ),
    (
        '{"type":"multivariate_lookup","sid":6,"msg":{"collection_ticker":"KXMVESPORTS","event_ticker":"KXMVE-E",'
        '"market_ticker":"KXMVE-E-M1","selected_markets":[{"event_ticker":"E1","market_ticker":"E1-M","side":"yes"}]}}',
        m.MultivariateLookupFrame,
    ),
    (
        '{"type":"fill","sid":13,"msg":{"trade_id":"t1","order_id":"o1","market_ticker":"M-1","is_taker":true,'
        '"side":"yes","yes_price_dollars":"0.7500","count_fp":"10.00","action":"buy","ts":1671899397}}',
        m.FillFrame,
    ),
    (
        '{"type":"user_order","sid":14,"msg":{"order_id":"o1","ticker":"M-2","status":"resting"}}',
        m.UserOrderFrame,
    ),
    (
        '{"type":"market_position","sid":15,"msg":{"market_ticker":"M-3","position_fp":"5.00"}}',
        m.MarketPositionFrame,
    ),
]


@pytest.mark.parametrize(("text", "cls"), REFERENCE_FRAMES)
def test_reference_examples_parse_and_envelope_agrees(text: str, cls: type) -> None:
    f = m.parse_frame(text)
    assert type(f) is cls
    env = m.decode_envelope(text.encode())
    assert (env.type, env.id, env.sid, env.seq) == (f.type, f.id, f.sid, f.seq)
    assert (env.market_ticker, env.ts_ms, env.sending_ts_ms) == (
        f.market_ticker,
        f.ts_ms,
        f.sending_ts_ms,
    )


def test_reference_example_values() -> None:
    err = m.parse_frame(REFERENCE_FRAMES[4][0])
    assert isinstance(err, m.ErrorFrame)
    assert err.code == 6 and err.info.name == "Already subscribed"
    ok = m.parse_frame(REFERENCE_FRAMES[2][0])
    assert isinstance(ok, m.OkFrame)
    assert (ok.sid, ok.seq, ok.market_tickers) == (456, 222, ["MARKET-1", "MARKET-2", "MARKET-3"])
    v2 = m.parse_frame(REFERENCE_FRAMES[10][0])
    assert isinstance(v2, m.TickerV2Frame)
    assert (v2.last_price, v2.volume_delta, v2.open_interest_delta) == (D("0.48"), D(100), D(10))
    life = m.parse_frame(REFERENCE_FRAMES[11][0])
    assert isinstance(life, m.MarketLifecycleFrame)
    assert life.msg.fractional_trading_enabled is False
    assert life.msg.additional_metadata is not None
    assert life.msg.additional_metadata.floor_strike == D(4487)
    mv = m.parse_frame(REFERENCE_FRAMES[12][0])
    assert isinstance(mv, m.MultivariateMarketLifecycleFrame)
    assert (mv.event_type, mv.msg.settlement_value) == ("determined", D("0"))
    fee = m.parse_frame(REFERENCE_FRAMES[14][0])
    assert isinstance(fee, m.EventFeeUpdateFrame)
    assert fee.msg.fee_multiplier_override == D(1) and fee.event_ticker == "KXBTCD-26MAY2018"
    cleared = m.parse_frame(
        '{"type":"event_fee_update","sid":5,"msg":{"event_ticker":"E","fee_type_override":null,'
        '"fee_multiplier_override":null}}'
    )
    assert isinstance(cleared, m.EventFeeUpdateFrame)
    assert cleared.msg.fee_type_override is None and cleared.msg.fee_multiplier_override is None
    lookup = m.parse_frame(REFERENCE_FRAMES[15][0])
    assert isinstance(lookup, m.MultivariateLookupFrame)
    assert lookup.msg.selected_markets == [
        m.SelectedMarket(event_ticker="E1", market_ticker="E1-M", side="yes")
    ]
    order = m.parse_frame(REFERENCE_FRAMES[17][0])
    assert isinstance(order, m.UserOrderFrame)
    assert order.market_ticker == "M-2"  # user_orders says `ticker`


def test_old_subscribed_without_msg_and_ok_without_lists() -> None:
    f = m.parse_frame('{"type":"subscribed","id":1}')
    assert isinstance(f, m.SubscribedFrame)
    assert (f.id, f.sid, f.channel) == (1, None, None)
    ok = m.parse_frame('{"id":5,"sid":2,"seq":3,"type":"ok"}')  # skip_ticker_ack
    assert isinstance(ok, m.OkFrame)
    assert (ok.msg, ok.market_tickers, ok.subscriptions) == (None, None, None)


# --------------------------------------------------------------------------------------------
# Tolerance and failure modes
# --------------------------------------------------------------------------------------------


def _with_extra_fields(line: bytes) -> bytes:
    obj = json.loads(line)
    obj["zz_future_field"] = {"nested": [1, 2.5, "x"], "n": None}
    if isinstance(obj.get("msg"), dict):
        obj["msg"]["zz_new_price_dollars"] = "0.1234"
        obj["msg"]["zz_list"] = [[1, 2]]
    return json.dumps(obj).encode()


@pytest.mark.parametrize("lineno", range(len(LINES)))
def test_unknown_fields_are_ignored(lineno: int) -> None:
    line = LINES[lineno]
    noisy = _with_extra_fields(line)
    assert m.parse_frame(noisy) == m.parse_frame(line)
    assert m.decode_envelope(noisy) == m.decode_envelope(line)


def test_unknown_type_returns_unknown_frame() -> None:
    text = (
        b'{"type":"order_group_updates","sid":9,"seq":4,"sending_ts_ms":17,'
        b'"msg":{"order_group_id":"g1","event_type":"triggered","market_ticker":"M","ts_ms":5}}'
    )
    f = m.parse_frame(text)
    assert isinstance(f, m.UnknownFrame)
    assert f.type == "order_group_updates"
    assert f.raw == json.loads(text)
    assert (f.id, f.sid, f.seq, f.sending_ts_ms, f.market_ticker, f.ts_ms) == (
        None,
        9,
        4,
        17,
        "M",
        5,
    )
    env = m.decode_envelope(text)
    assert (env.type, env.sid, env.seq, env.market_ticker, env.ts_ms) == (
        "order_group_updates",
        9,
        4,
        "M",
        5,
    )
    rfq = m.parse_frame('{"type":"rfq_created","sid":7,"msg":["weird"]}')
    assert isinstance(rfq, m.UnknownFrame)
    assert rfq.market_ticker is None and rfq.ts_ms is None
    assert "order_group_updates" not in m.KNOWN_FRAME_TYPES
    assert {"orderbook_delta", "ok", "multivariate_lookup"} <= m.KNOWN_FRAME_TYPES


@pytest.mark.parametrize(
    "text",
    [
        b"{not json",
        b"",
        b'{"type":"trade"',
        b"[1, 2]",
        b'"ticker"',
        b'{"sid": 1, "msg": {}}',
        b'{"type": 5}',
        # known types whose required fields are missing or wrong
        b'{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"A","price_dollars":"0.5","delta_fp":"1.00"}}',
        b'{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"A","price_dollars":"0.5","delta_fp":"1","side":"maybe"}}',
        b'{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"A","delta_fp":"1.00","side":"yes"}}',
        b'{"type":"orderbook_delta","sid":1,"seq":3,"msg":{"market_ticker":"A","price_dollars":"x","delta_fp":"1","side":"yes"}}',
        b'{"type":"orderbook_snapshot","sid":1,"msg":{"market_ticker":"A"}}',
        b'{"type":"trade","sid":3,"msg":{"trade_id":"t","market_ticker":"A","count_fp":"1.00"}}',
        b'{"type":"error","id":3,"msg":{"msg":"no code"}}',
    ],
)
def test_bad_frames_raise_frame_parse_error(text: bytes) -> None:
    with pytest.raises(m.FrameParseError) as info:
        m.parse_frame(text)
    assert isinstance(info.value, ValueError)
    assert "\n" not in str(info.value) and str(info.value)


@pytest.mark.parametrize("text", [b"{not json", b"[1]", b'{"sid":1}', b'{"type":"x","seq":"7"}'])
def test_bad_envelopes_raise_frame_parse_error(text: bytes) -> None:
    with pytest.raises(m.FrameParseError) as info:
        m.decode_envelope(text)
    assert "\n" not in str(info.value)


def test_error_code_table() -> None:
    assert set(m.ERROR_CODES) == set(range(1, 29))
    assert sorted(m.TERMINAL_ERROR_CODES) == [10, 17, 25]
    assert m.ERROR_CODES[9].name == "Authentication required"
    assert m.ERROR_CODES[25].name == "Subscription buffer overflow"
    assert m.describe_error_code(12).name == "Exactly one subscription ID is required"
    unknown = m.describe_error_code(99)
    assert unknown.code == 99 and not unknown.terminal
    e = m.parse_frame(
        '{"id":1,"type":"error","msg":{"code":25,"msg":"Subscription buffer overflow"}}'
    )
    assert isinstance(e, m.ErrorFrame) and e.is_terminal


# --------------------------------------------------------------------------------------------
# Command builders (reference sections 2 and 9)
# --------------------------------------------------------------------------------------------


def test_builders_reproduce_the_section9_session_byte_for_byte() -> None:
    assert m.subscribe(1, ["orderbook_delta"], [A, B]) == (
        b'{"id":1,"cmd":"subscribe","params":{"channels":["orderbook_delta"],'
        b'"market_tickers":["KXBTCD-25DEC31-T100000","INXD-25DEC31-B5000"]}}'
    )
    assert m.subscribe(2, ["ticker", "trade"], [A, B], send_initial_snapshot=True) == (
        b'{"id":2,"cmd":"subscribe","params":{"channels":["ticker","trade"],'
        b'"market_tickers":["KXBTCD-25DEC31-T100000","INXD-25DEC31-B5000"],'
        b'"send_initial_snapshot":true}}'
    )
    assert m.subscribe(3, ["market_lifecycle_v2"]) == (
        b'{"id":3,"cmd":"subscribe","params":{"channels":["market_lifecycle_v2"]}}'
    )
    assert m.update_subscription(4, 1, "add_markets", [C]) == (
        b'{"id":4,"cmd":"update_subscription","params":{"sid":1,"action":"add_markets",'
        b'"market_tickers":["KXBTCD-25DEC31-T105000"]}}'
    )
    assert m.subscribe(5, ["ticker_v2"]) == (
        b'{"id":5,"cmd":"subscribe","params":{"channels":["ticker_v2"]}}'
    )
    assert m.subscribe(6, ["orderbook_delta"], market_ticker="KXBTCD-25DEC31-T999999") == (
        b'{"id":6,"cmd":"subscribe","params":{"channels":["orderbook_delta"],'
        b'"market_ticker":"KXBTCD-25DEC31-T999999"}}'
    )
    # id 7 in the session is the multi-sid mistake the builder refuses (server error 12)
    with pytest.raises(ValueError, match="exactly one sid"):
        m.update_subscription(7, [1, 2], "delete_markets", [B])  # type: ignore[arg-type]
    assert m.list_subscriptions(8) == b'{"id":8,"cmd":"list_subscriptions"}'
    assert m.update_subscription(9, 1, "get_snapshot", [A]) == (
        b'{"id":9,"cmd":"update_subscription","params":{"sid":1,"action":"get_snapshot",'
        b'"market_tickers":["KXBTCD-25DEC31-T100000"]}}'
    )
    assert m.get_snapshot(9, 1, [A]) == m.update_subscription(9, 1, "get_snapshot", [A])
    assert m.unsubscribe(10, [1]) == b'{"id":10,"cmd":"unsubscribe","params":{"sids":[1]}}'


def _compact(text: str) -> bytes:
    return json.dumps(json.loads(text), separators=(",", ":")).encode()


def test_builders_match_the_section2_examples() -> None:
    # Same key order as the reference, so the compact forms are identical.
    assert m.subscribe(1, ["orderbook_delta"], market_ticker="CPI-22DEC-TN0.1") == _compact(
        '{"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_ticker": "CPI-22DEC-TN0.1"}}'
    )
    assert m.subscribe(2, ["orderbook_delta"], [A, B]) == _compact(
        '{"id": 2, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_tickers": ["KXBTCD-25DEC31-T100000", "INXD-25DEC31-B5000"]}}'
    )
    assert m.subscribe(3, ["ticker", "trade"], [A], True) == _compact(
        '{"id": 3, "cmd": "subscribe", "params": {"channels": ["ticker", "trade"], "market_tickers": ["KXBTCD-25DEC31-T100000"], "send_initial_snapshot": true}}'
    )
    assert m.subscribe(4, ["market_lifecycle_v2"]) == _compact(
        '{"id": 4, "cmd": "subscribe", "params": {"channels": ["market_lifecycle_v2"]}}'
    )
    assert m.unsubscribe(124, [1, 2]) == _compact(
        '{"id": 124, "cmd": "unsubscribe", "params": {"sids": [1, 2]}}'
    )
    assert m.list_subscriptions(3) == _compact('{"id": 3, "cmd": "list_subscriptions"}')
    # Section 2.3 lists `action` last; key order is not significant in JSON.
    examples = [
        (
            m.update_subscription(
                124, 456, "add_markets", ["NEW-MARKET-1", "NEW-MARKET-2"], sid_as_list=True
            ),
            '{"id": 124, "cmd": "update_subscription", "params": {"sids": [456], "market_tickers": ["NEW-MARKET-1", "NEW-MARKET-2"], "action": "add_markets"}}',
        ),
        (
            m.update_subscription(
                125, 456, "delete_markets", ["MARKET-TO-REMOVE-1"], sid_as_list=True
            ),
            '{"id": 125, "cmd": "update_subscription", "params": {"sids": [456], "market_tickers": ["MARKET-TO-REMOVE-1"], "action": "delete_markets"}}',
        ),
        (
            m.update_subscription(126, 456, "add_markets", ["NEW-MARKET-3"]),
            '{"id": 126, "cmd": "update_subscription", "params": {"sid": 456, "market_tickers": ["NEW-MARKET-3"], "action": "add_markets"}}',
        ),
        (
            m.get_snapshot(127, 1, ["KXBTCD-25DEC31-T100000"]),
            '{"id": 127, "cmd": "update_subscription", "params": {"sid": 1, "market_tickers": ["KXBTCD-25DEC31-T100000"], "action": "get_snapshot"}}',
        ),
    ]
    for built, example in examples:
        assert json.loads(built) == json.loads(example)


def test_builder_optional_params() -> None:
    out = json.loads(
        m.subscribe(
            5,
            ["ticker"],
            market_ids=["u-1", "u-2"],
            skip_ticker_ack=True,
        )
    )
    assert out["params"] == {
        "channels": ["ticker"],
        "market_ids": ["u-1", "u-2"],
        "skip_ticker_ack": True,
    }
    out = json.loads(m.subscribe(6, ["orderbook_delta"], [A], use_yes_price=False))
    assert out["params"]["use_yes_price"] is False
    out = json.loads(m.subscribe(7, ["communications"], shard_factor=4, shard_key=3))
    assert out["params"] == {"channels": ["communications"], "shard_factor": 4, "shard_key": 3}
    out = json.loads(m.update_subscription(8, 2, "add_markets", market_ticker="X"))
    assert out["params"] == {"sid": 2, "action": "add_markets", "market_ticker": "X"}


@pytest.mark.parametrize(
    "call",
    [
        lambda: m.subscribe(0, ["ticker"]),  # id 0 counts as "no id"
        lambda: m.subscribe(1, []),
        lambda: m.subscribe(1, ["orderbook_delta"]),  # the book needs markets
        lambda: m.subscribe(1, ["ticker"], [A], market_ticker=A),
        lambda: m.subscribe(1, ["ticker"], A),  # a bare string, not a list
        lambda: m.subscribe(1, ["ticker"], []),
        lambda: m.subscribe(1, ["trade"], market_ids=["u-1"]),  # ids: ticker channel only
        lambda: m.subscribe(1, ["communications"], shard_key=1),
        lambda: m.subscribe(1, ["communications"], shard_factor=101),
        lambda: m.subscribe(1, ["communications"], shard_factor=4, shard_key=4),
        lambda: m.unsubscribe(1, []),
        lambda: m.unsubscribe(1, [0]),
        lambda: m.update_subscription(1, 0, "add_markets", [A]),
        lambda: m.update_subscription(1, 1, "replace_markets", [A]),  # type: ignore[arg-type]
        lambda: m.update_subscription(1, 1, "add_markets"),  # no markets: error 14
        lambda: m.list_subscriptions(-1),
    ],
)
def test_builders_reject_what_the_server_would_reject(call: Any) -> None:
    with pytest.raises(ValueError):
        call()


# --------------------------------------------------------------------------------------------
# Property-based
# --------------------------------------------------------------------------------------------

dollar_prices = st.decimals(
    min_value=D("0.0001"), max_value=D("0.9999"), places=4, allow_nan=False, allow_infinity=False
)
fp_counts = st.decimals(
    min_value=D("-1000000"), max_value=D("1000000"), places=2, allow_nan=False, allow_infinity=False
)
tickers = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.", min_size=1, max_size=40)


def _delta_json(ticker: str, seq: int, price: str, delta: str, side: str, **extra: Any) -> bytes:
    msg = {"market_ticker": ticker, "price_dollars": price, "delta_fp": delta, "side": side}
    msg.update(extra)
    return json.dumps({"type": "orderbook_delta", "sid": 1, "seq": seq, "msg": msg}).encode()


@settings(max_examples=200, deadline=None)
@given(price=dollar_prices, count=fp_counts, side=st.sampled_from(["yes", "no"]))
def test_dollar_and_fp_strings_round_trip_exactly(
    price: Decimal, count: Decimal, side: str
) -> None:
    price_s, count_s = f"{price:.4f}", f"{count:.2f}"
    f = m.parse_frame(_delta_json("T", 1, price_s, count_s, side))
    assert isinstance(f, m.OrderbookDeltaFrame)
    assert f.price == price and str(f.price) == price_s
    assert f.size == count and str(f.size) == count_s
    assert f.side == side


@settings(max_examples=200, deadline=None)
@given(cents=st.integers(1, 99), delta=st.integers(-(10**6), 10**6))
def test_legacy_cents_equal_dollar_strings(cents: int, delta: int) -> None:
    current = m.parse_frame(_delta_json("T", 1, f"{D(cents) / 100:.4f}", f"{delta}.00", "no"))
    legacy = m.parse_frame(
        json.dumps(
            {
                "type": "orderbook_delta",
                "sid": 1,
                "seq": 1,
                "msg": {"market_ticker": "T", "price": cents, "delta": delta, "side": "no"},
            }
        )
    )
    assert isinstance(current, m.OrderbookDeltaFrame) and isinstance(legacy, m.OrderbookDeltaFrame)
    assert (legacy.price, legacy.size) == (current.price, current.size)
    # equal Decimals hash equal, so both forms hit the same book level
    assert {current.price: 1}.keys() == {legacy.price: 1}.keys()


@settings(max_examples=200, deadline=None)
@given(
    ticker=tickers,
    sid=st.integers(1, 2**31),
    seq=st.integers(1, 2**53),
    ts_ms=st.one_of(st.none(), st.integers(0, 2**53)),
    sending=st.one_of(st.none(), st.integers(0, 2**53)),
    extra=st.dictionaries(
        st.text(min_size=1, max_size=8).map(lambda k: "x_" + k),
        st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers(), max_size=3)),
        max_size=4,
    ),
)
def test_envelope_agrees_on_generated_deltas(
    ticker: str, sid: int, seq: int, ts_ms: int | None, sending: int | None, extra: dict[str, Any]
) -> None:
    msg: dict[str, Any] = {
        "market_ticker": ticker,
        "price_dollars": "0.5000",
        "delta_fp": "1.00",
        "side": "yes",
        **extra,
    }
    if ts_ms is not None:
        msg["ts_ms"] = ts_ms
    frame: dict[str, Any] = {"type": "orderbook_delta", "sid": sid, "seq": seq, "msg": msg, **extra}
    if sending is not None:
        frame["sending_ts_ms"] = sending
    data = json.dumps(frame).encode()
    env = m.decode_envelope(data)
    full = m.parse_frame(data)
    assert (
        (env.type, env.sid, env.seq, env.market_ticker, env.ts_ms, env.sending_ts_ms)
        == (
            full.type,
            full.sid,
            full.seq,
            full.market_ticker,
            full.ts_ms,
            full.sending_ts_ms,
        )
        == ("orderbook_delta", sid, seq, ticker, ts_ms, sending)
    )


# --------------------------------------------------------------------------------------------
# REST models (reference section 4)
# --------------------------------------------------------------------------------------------

MARKET_A = {
    "ticker": A,
    "event_ticker": "KXBTCD-25DEC31",
    "market_type": "binary",
    "status": "active",
    "yes_sub_title": "$100,000 or above",
    "no_sub_title": "Below $100,000",
    "open_time": "2025-12-30T22:00:00Z",
    "close_time": "2025-12-31T22:00:00Z",
    "yes_bid_dollars": "0.4300",
    "yes_ask_dollars": "0.4400",
    "no_bid_dollars": "0.5600",
    "no_ask_dollars": "0.5700",
    "last_price_dollars": "0.4300",
    "yes_bid_size_fp": "80.00",
    "yes_ask_size_fp": "60.00",
    "volume_fp": "12500.00",
    "volume_24h_fp": "900.50",
    "open_interest_fp": "8200.00",
    "liquidity_dollars": "0.0000",
    "settlement_timer_seconds": 300,
    "result": "",
    "can_close_early": False,
    "fractional_trading_enabled": True,
    "strike_type": "greater",
    "floor_strike": 99999.99,
    "price_level_structure": "linear_cent",
    "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
    # legacy ints and a field from the future: both ignored
    "yes_bid": 43,
    "exchange_index": 3,
    "brand_new_thing": {"a": [1, 2]},
}


def test_markets_page_and_cursor() -> None:
    body = json.dumps({"markets": [MARKET_A, {"ticker": B}], "cursor": "CgsI2"}).encode()
    markets, cursor = r.parse_markets_page(body)
    assert cursor == "CgsI2"
    a, b = markets
    assert a.ticker == A and a.series_ticker == "KXBTCD"
    assert (a.yes_bid_dollars, a.yes_ask_dollars) == (D("0.4300"), D("0.4400"))
    assert (a.no_bid_dollars, a.no_ask_dollars) == (D("0.5600"), D("0.5700"))
    assert a.last_price_dollars == D("0.43") and str(a.last_price_dollars) == "0.4300"
    assert (a.yes_bid_size_fp, a.volume_24h_fp) == (D("80.00"), D("900.50"))
    assert a.floor_strike == D("99999.99")
    assert a.price_ranges == [r.PriceRange(start=D(0), end=D(1), step=D("0.01"))]
    assert (a.status, a.result, a.exchange_index) == ("active", "", 3)
    assert a.fractional_trading_enabled is True
    # a minimal market: everything optional is None
    assert b.ticker == B and b.yes_bid_dollars is None and b.price_ranges is None
    assert b.series_ticker == "INXD"
    for last_page in (
        b'{"markets":[],"cursor":""}',
        b'{"markets":[]}',
        b'{"markets":[],"cursor":null}',
    ):
        assert r.parse_markets_page(last_page) == ([], None)


def test_single_market() -> None:
    mk = r.parse_market(json.dumps({"market": MARKET_A}).encode())
    assert mk.ticker == A and mk.volume_fp == D("12500.00")
    with pytest.raises(r.RestParseError):
        r.parse_market(b'{"markets":[]}')


def test_events_and_event() -> None:
    ev = {
        "event_ticker": "KXBTCD-25DEC31",
        "series_ticker": "KXBTCD",
        "title": "Bitcoin price on Dec 31, 2025?",
        "sub_title": "Dec 31, 2025 at 5pm EST",
        "collateral_return_type": "",
        "mutually_exclusive": False,
        "category": "Crypto",
        "strike_date": "2025-12-31T22:00:00Z",
        "available_on_brokers": True,
        "markets": [MARKET_A],
    }
    events, cursor = r.parse_events_page(json.dumps({"events": [ev], "cursor": "next"}).encode())
    assert cursor == "next"
    (e,) = events
    assert (e.event_ticker, e.series_ticker, e.sub_title) == (
        "KXBTCD-25DEC31",
        "KXBTCD",
        "Dec 31, 2025 at 5pm EST",
    )
    assert e.mutually_exclusive is False and e.strike_date == "2025-12-31T22:00:00Z"
    assert e.markets is not None and e.markets[0].ticker == A
    no_nested = dict(ev)
    del no_nested["markets"]
    single = r.parse_event(json.dumps({"event": no_nested, "markets": [MARKET_A]}).encode())
    assert single.markets is not None and [mk.ticker for mk in single.markets] == [A]
    assert (
        r.parse_event(
            json.dumps({"event": {"event_ticker": "E", "strike_date": 1767304800}})
        ).strike_date
        == 1767304800
    )


def test_series() -> None:
    s = {
        "ticker": "KXBTCD",
        "frequency": "daily",
        "title": "Bitcoin price",
        "category": "Crypto",
        "tags": ["BTC"],
        "settlement_sources": [{"name": "CF Benchmarks", "url": "https://www.cfbenchmarks.com"}],
        "contract_url": "https://kalshi.example/c.pdf",
        "contract_terms_url": "https://kalshi.example/t.pdf",
        "fee_type": "quadratic",
        "fee_multiplier": 0.5,
        "additional_prohibitions": [],
        "volume_fp": "1000.00",
    }
    one = r.parse_series(json.dumps({"series": s}).encode())
    assert one.fee_multiplier == D("0.5") and one.volume_fp == D(1000)
    assert one.settlement_sources == [
        r.SettlementSource(name="CF Benchmarks", url="https://www.cfbenchmarks.com")
    ]
    listed, cursor = r.parse_series_list(json.dumps({"series": [s, {"ticker": "INXD"}]}).encode())
    assert [x.ticker for x in listed] == ["KXBTCD", "INXD"] and cursor is None
    assert r.parse_series_list(b'{"series":null}') == ([], None)


def test_orderbook_current_legacy_and_batch() -> None:
    fp = r.parse_orderbook(
        b'{"orderbook_fp":{"yes_dollars":[["0.4200","13.00"],["0.4100","5.00"]],'
        b'"no_dollars":[["0.5500","7.00"]]}}'
    )
    assert fp.yes == [(D("0.41"), D(5)), (D("0.42"), D(13))]  # ascending, best last
    assert fp.no == [(D("0.55"), D(7))]
    legacy = r.parse_orderbook(
        b'{"orderbook":{"yes":[[15,100],[16,20]],"no":null,'
        b'"yes_dollars":[["0.1500",100],["0.1600",20]],"no_dollars":null}}'
    )
    assert legacy.yes == [(D("0.15"), D(100)), (D("0.16"), D(20))] and legacy.no == []
    cents = r.parse_orderbook(b'{"orderbook":{"yes":[[15,100]],"no":[[80,5]]}}')
    assert (cents.yes, cents.no) == ([(D("0.15"), D(100))], [(D("0.80"), D(5))])
    both = r.parse_orderbook(
        b'{"orderbook":{"yes":[[1,1]]},"orderbook_fp":{"yes_dollars":[["0.0200","2.00"]]}}'
    )
    assert both.yes == [(D("0.02"), D(2))]  # fixed-point wins
    # REST keys are yes_dollars, not the WS yes_dollars_fp: the WS key is just unknown here
    assert r.parse_orderbook(b'{"orderbook_fp":{"yes_dollars_fp":[["0.1","1"]]}}').yes == []
    assert r.parse_orderbook(b"{}") == r.Orderbook(yes=[], no=[])
    batch = r.parse_orderbooks(
        b'{"orderbooks":[{"ticker":"A","orderbook_fp":{"no_dollars":[["0.3000","1.00"]]}},'
        b'{"ticker":"B","orderbook_fp":{}}]}'
    )
    assert batch == {
        "A": r.Orderbook(yes=[], no=[(D("0.3"), D(1))]),
        "B": r.Orderbook(yes=[], no=[]),
    }


def test_trades_page() -> None:
    body = json.dumps(
        {
            "trades": [
                {
                    "trade_id": "8b0d2c54-1f6e-4a3b-9d27-6c0e5f1a7b93",
                    "ticker": A,
                    "count_fp": "50.00",
                    "yes_price_dollars": "0.4500",
                    "no_price_dollars": "0.5500",
                    "taker_side": "yes",
                    "taker_outcome_side": "yes",
                    "taker_book_side": "bid",
                    "created_time": "2025-12-31T20:00:04Z",
                },
                {  # legacy integer form
                    "trade_id": "t2",
                    "ticker": B,
                    "count": 60,
                    "yes_price": 20,
                    "no_price": 80,
                    "taker_side": "no",
                    "created_time": "2025-12-31T20:00:07Z",
                },
            ],
            "cursor": "",
        }
    ).encode()
    trades, cursor = r.parse_trades_page(body)
    assert cursor is None
    t1, t2 = trades
    assert (t1.market_ticker, t1.price, t1.no_price, t1.size) == (A, D("0.45"), D("0.55"), D(50))
    assert (t1.outcome_side, t1.book_side, t1.created_time) == (
        "yes",
        "bid",
        "2025-12-31T20:00:04Z",
    )
    assert (t2.ticker, t2.yes_price, t2.no_price, t2.size) == (B, D("0.2"), D("0.8"), D(60))
    assert (t2.outcome_side, t2.book_side) == ("no", "ask")
    # A WS-shaped trade (market_ticker) is not a REST trade: pitfall 9 caught loudly.
    with pytest.raises(r.RestParseError, match="ticker"):
        r.parse_trades_page(
            b'{"trades":[{"trade_id":"t","market_ticker":"A","count_fp":"1.00","yes_price_dollars":"0.5"}]}'
        )


def test_rest_errors_and_bad_bodies() -> None:
    assert r.parse_rest_error(b'{"error": "too many requests"}').message == "too many requests"
    flat = r.parse_rest_error(
        b'{"code":"not_found","message":"market not found","details":"","service":"exchange"}'
    )
    assert (flat.code, flat.message, flat.service) == ("not_found", "market not found", "exchange")
    nested = r.parse_rest_error(b'{"error":{"code":"order_already_exists","message":"dup"}}')
    assert (nested.code, nested.message) == ("order_already_exists", "dup")
    for bad in (b"<html>502</html>", b'{"markets": {}}', b'{"markets":[{"no_ticker":1}]}'):
        with pytest.raises(r.RestParseError) as info:
            r.parse_markets_page(bad)
        assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
