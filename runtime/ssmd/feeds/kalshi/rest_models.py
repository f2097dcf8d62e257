"""Kalshi REST v2 market-data responses (reference section 4) as msgspec models.

Dollar and count fields are :class:`~decimal.Decimal`; unknown fields are ignored and
optional fields may be missing. Timestamps in REST are RFC3339 strings and are kept as
strings (parse them where needed). The ``parse_*`` helpers take a response body and raise
:class:`RestParseError` on anything that does not fit.

Pitfalls handled here: REST trades name the market ``ticker`` (WS uses ``market_ticker``);
the REST book is ``orderbook_fp`` with ``yes_dollars``/``no_dollars`` (WS uses
``yes_dollars_fp``); an empty or missing ``cursor`` means "last page".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, TypeVar

import msgspec

from ssmd.feeds.kalshi.messages import (
    Level,
    PriceRange,
    _book_side,
    _count,
    _dollars,
    _outcome_side,
    _yes_price,
    normalize_levels,
)

__all__ = [
    "Event",
    "EventResponse",
    "EventsPage",
    "Market",
    "MarketResponse",
    "MarketsPage",
    "MveLeg",
    "Orderbook",
    "OrderbookResponse",
    "OrderbooksResponse",
    "RestError",
    "RestOrderbookFp",
    "RestOrderbookLegacy",
    "RestParseError",
    "Series",
    "SeriesList",
    "SeriesResponse",
    "SettlementSource",
    "Trade",
    "TradesPage",
    "next_cursor",
    "parse_event",
    "parse_events_page",
    "parse_market",
    "parse_markets_page",
    "parse_orderbook",
    "parse_orderbooks",
    "parse_rest_error",
    "parse_series",
    "parse_series_list",
    "parse_trades_page",
]


class RestParseError(ValueError):
    """A REST body that is not valid JSON or does not have the documented shape."""


def next_cursor(cursor: str | None) -> str | None:
    """The cursor to send for the next page, or None when this was the last page."""
    return cursor or None


# --------------------------------------------------------------------------------------------
# Markets
# --------------------------------------------------------------------------------------------


class MveLeg(msgspec.Struct, kw_only=True):
    event_ticker: str
    market_ticker: str
    side: str
    yes_settlement_value_dollars: Decimal | None = None


class Market(msgspec.Struct, kw_only=True):
    """The Market object (spec 3.8.0). ``status`` uses its own vocabulary (``active``,
    ``inactive``, ``finalized`` ...), not the query filter's (``open``, ``paused`` ...).
    The legacy integer-cent fields are deliberately not read (the reference says not to)."""

    ticker: str
    event_ticker: str = ""
    market_type: str | None = None  # "binary" | "scalar"
    status: str | None = None
    yes_sub_title: str | None = None
    no_sub_title: str | None = None
    title: str | None = None  # deprecated
    subtitle: str | None = None  # deprecated
    created_time: str | None = None
    updated_time: str | None = None
    open_time: str | None = None
    close_time: str | None = None
    latest_expiration_time: str | None = None
    expected_expiration_time: str | None = None
    expiration_time: str | None = None  # deprecated
    settlement_ts: str | None = None
    fee_waiver_expiration_time: str | None = None
    settlement_timer_seconds: int | None = None
    yes_bid_dollars: Decimal | None = None
    yes_ask_dollars: Decimal | None = None
    no_bid_dollars: Decimal | None = None
    no_ask_dollars: Decimal | None = None
    last_price_dollars: Decimal | None = None
    previous_yes_bid_dollars: Decimal | None = None
    previous_yes_ask_dollars: Decimal | None = None
    previous_price_dollars: Decimal | None = None
    notional_value_dollars: Decimal | None = None
    settlement_value_dollars: Decimal | None = None
    liquidity_dollars: Decimal | None = None  # deprecated, always 0
    yes_bid_size_fp: Decimal | None = None
    yes_ask_size_fp: Decimal | None = None
    volume_fp: Decimal | None = None
    volume_24h_fp: Decimal | None = None
    open_interest_fp: Decimal | None = None
    result: str | None = None  # "yes" | "no" | "scalar" | ""
    can_close_early: bool | None = None
    fractional_trading_enabled: bool | None = None
    is_provisional: bool | None = None
    expiration_value: str | None = None
    rules_primary: str | None = None
    rules_secondary: str | None = None
    early_close_condition: str | None = None
    strike_type: str | None = None
    floor_strike: Decimal | None = None
    cap_strike: Decimal | None = None
    functional_strike: str | None = None
    custom_strike: Any = None  # free-form object
    price_level_structure: str | None = None
    price_ranges: list[PriceRange] | None = None
    mve_collection_ticker: str | None = None
    mve_selected_legs: list[MveLeg] | None = None
    exchange_index: int | None = None

    @property
    def series_ticker(self) -> str:
        """The series is the event ticker's prefix (``KXBTCD-25DEC31`` -> ``KXBTCD``)."""
        return (self.event_ticker or self.ticker).split("-", 1)[0]


class MarketsPage(msgspec.Struct, kw_only=True):
    markets: list[Market] = msgspec.field(default_factory=list)
    cursor: str | None = None


class MarketResponse(msgspec.Struct, kw_only=True):
    market: Market


# --------------------------------------------------------------------------------------------
# Events and series
# --------------------------------------------------------------------------------------------


class Event(msgspec.Struct, kw_only=True):
    event_ticker: str
    series_ticker: str = ""
    title: str = ""
    sub_title: str = ""
    collateral_return_type: str = ""
    mutually_exclusive: bool | None = None
    category: str | None = None  # deprecated
    # REST documents strike_date without a wire type; WS lifecycle uses int seconds, so
    # accept either an RFC3339 string or an int.
    strike_date: str | int | None = None
    strike_period: str | None = None
    markets: list[Market] | None = None  # only with with_nested_markets=true
    available_on_brokers: bool | None = None
    product_metadata: dict[str, Any] | None = None


class EventsPage(msgspec.Struct, kw_only=True):
    events: list[Event] = msgspec.field(default_factory=list)
    cursor: str | None = None


class EventResponse(msgspec.Struct, kw_only=True):
    event: Event
    markets: list[Market] | None = None


class SettlementSource(msgspec.Struct, kw_only=True):
    name: str | None = None
    url: str | None = None


class Series(msgspec.Struct, kw_only=True):
    ticker: str
    frequency: str | None = None
    title: str | None = None
    category: str | None = None
    tags: list[str] | None = None
    settlement_sources: list[SettlementSource] | None = None
    contract_url: str | None = None
    contract_terms_url: str | None = None
    fee_type: str | None = None  # quadratic | quadratic_with_maker_fees | flat
    fee_multiplier: Decimal | None = None
    additional_prohibitions: list[str] | None = None
    product_metadata: dict[str, Any] | None = None
    volume: int | None = None
    volume_fp: Decimal | None = None


class SeriesResponse(msgspec.Struct, kw_only=True):
    series: Series


class SeriesList(msgspec.Struct, kw_only=True):
    # GET /series answers under the same key as GET /series/{ticker}, but as a list.
    # Whether it pages is not documented; a cursor is accepted if present.
    series: list[Series] | None = None
    cursor: str | None = None


# --------------------------------------------------------------------------------------------
# Order book
# --------------------------------------------------------------------------------------------


class RestOrderbookFp(msgspec.Struct, kw_only=True):
    """Current REST book: ``yes_dollars``/``no_dollars`` (not ``*_fp`` as on WS)."""

    yes_dollars: list[Level] | None = None
    no_dollars: list[Level] | None = None


class RestOrderbookLegacy(msgspec.Struct, kw_only=True):
    """Legacy ``orderbook``: ``yes``/``no`` in cents, ``*_dollars`` with int counts."""

    yes: list[tuple[int, int]] | None = None
    no: list[tuple[int, int]] | None = None
    yes_dollars: list[Level] | None = None
    no_dollars: list[Level] | None = None


class OrderbookResponse(msgspec.Struct, kw_only=True):
    orderbook_fp: RestOrderbookFp | None = None
    orderbook: RestOrderbookLegacy | None = None
    ticker: str | None = None  # present in the batch endpoint's items


class OrderbooksResponse(msgspec.Struct, kw_only=True):
    orderbooks: list[OrderbookResponse] = msgspec.field(default_factory=list)


class Orderbook(msgspec.Struct, kw_only=True):
    """Normalized REST book: both sides are bids, ascending, best last. No seq, so it cannot
    be stitched onto a WS delta stream."""

    yes: list[Level]
    no: list[Level]


def _normalize_book(resp: OrderbookResponse) -> Orderbook:
    fp, legacy = resp.orderbook_fp, resp.orderbook
    if fp is not None:
        return Orderbook(yes=normalize_levels(fp.yes_dollars), no=normalize_levels(fp.no_dollars))
    if legacy is not None:
        return Orderbook(
            yes=normalize_levels(None, legacy.yes_dollars, legacy.yes),
            no=normalize_levels(None, legacy.no_dollars, legacy.no),
        )
    return Orderbook(yes=[], no=[])


# --------------------------------------------------------------------------------------------
# Trades
# --------------------------------------------------------------------------------------------


class Trade(msgspec.Struct, kw_only=True):
    """A REST trade: the market is ``ticker`` here (WS trade frames say ``market_ticker``)."""

    trade_id: str
    ticker: str
    count_fp: Decimal | None = None
    yes_price_dollars: Decimal | None = None
    no_price_dollars: Decimal | None = None
    taker_outcome_side: str | None = None
    taker_book_side: str | None = None
    taker_side: str | None = None  # deprecated
    created_time: str | None = None  # RFC3339
    legacy_count: int | None = msgspec.field(default=None, name="count")
    legacy_yes_price: int | None = msgspec.field(default=None, name="yes_price")
    legacy_no_price: int | None = msgspec.field(default=None, name="no_price")
    legacy_price: int | None = msgspec.field(default=None, name="price")

    def __post_init__(self) -> None:
        if (
            self.yes_price_dollars is None
            and self.legacy_yes_price is None
            and self.legacy_price is None
        ):
            raise ValueError("trade has no yes_price_dollars, yes_price or price")
        if self.count_fp is None and self.legacy_count is None:
            raise ValueError("trade has neither count_fp nor count")

    @property
    def market_ticker(self) -> str:
        return self.ticker

    @property
    def yes_price(self) -> Decimal:
        return _yes_price(self.yes_price_dollars, self.legacy_yes_price, self.legacy_price)

    @property
    def no_price(self) -> Decimal:
        no = _dollars(self.no_price_dollars, self.legacy_no_price)
        return no if no is not None else Decimal(1) - self.yes_price

    @property
    def price(self) -> Decimal:
        return self.yes_price

    @property
    def size(self) -> Decimal:
        count = _count(self.count_fp, self.legacy_count)
        assert count is not None  # guaranteed by __post_init__
        return count

    @property
    def outcome_side(self) -> str | None:
        """``taker_outcome_side``, falling back to the deprecated ``taker_side``."""
        return _outcome_side(self.taker_outcome_side, self.taker_side)

    @property
    def book_side(self) -> str | None:
        return _book_side(self.taker_book_side, self.outcome_side)


class TradesPage(msgspec.Struct, kw_only=True):
    trades: list[Trade] = msgspec.field(default_factory=list)
    cursor: str | None = None


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class _ErrorBody(msgspec.Struct, kw_only=True):
    code: str | None = None
    message: str | None = None
    details: str | None = None
    service: str | None = None


class _ErrorResponse(msgspec.Struct, kw_only=True):
    code: str | None = None
    message: str | None = None
    details: str | None = None
    service: str | None = None
    # 429 sends {"error": "too many requests"}; some clients saw {"error": {"code": ...}}.
    error: str | _ErrorBody | None = None


class RestError(msgspec.Struct, kw_only=True):
    code: str | None = None
    message: str | None = None
    details: str | None = None
    service: str | None = None


def parse_rest_error(body: bytes | str) -> RestError:
    """Any of the documented error body shapes as one flat RestError."""
    r = _decode(_ERROR_DECODER, body, "error")
    if isinstance(r.error, _ErrorBody):
        e = r.error
        return RestError(code=e.code, message=e.message, details=e.details, service=e.service)
    message = r.message if r.message is not None else r.error
    return RestError(code=r.code, message=message, details=r.details, service=r.service)


# --------------------------------------------------------------------------------------------
# Parse helpers
# --------------------------------------------------------------------------------------------

_T = TypeVar("_T")

_MARKETS_DECODER: Final = msgspec.json.Decoder(MarketsPage)
_MARKET_DECODER: Final = msgspec.json.Decoder(MarketResponse)
_EVENTS_DECODER: Final = msgspec.json.Decoder(EventsPage)
_EVENT_DECODER: Final = msgspec.json.Decoder(EventResponse)
_SERIES_DECODER: Final = msgspec.json.Decoder(SeriesResponse)
_SERIES_LIST_DECODER: Final = msgspec.json.Decoder(SeriesList)
_ORDERBOOK_DECODER: Final = msgspec.json.Decoder(OrderbookResponse)
_ORDERBOOKS_DECODER: Final = msgspec.json.Decoder(OrderbooksResponse)
_TRADES_DECODER: Final = msgspec.json.Decoder(TradesPage)
_ERROR_DECODER: Final = msgspec.json.Decoder(_ErrorResponse)


def _decode(decoder: msgspec.json.Decoder[_T], body: bytes | str, what: str) -> _T:
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:  # includes ValidationError
        raise RestParseError(f"bad {what} response: {' '.join(str(exc).split())}") from None


def parse_markets_page(body: bytes | str) -> tuple[list[Market], str | None]:
    """``GET /markets``: the markets and the next cursor (None on the last page)."""
    page = _decode(_MARKETS_DECODER, body, "markets")
    return page.markets, next_cursor(page.cursor)


def parse_market(body: bytes | str) -> Market:
    """``GET /markets/{ticker}``."""
    return _decode(_MARKET_DECODER, body, "market").market


def parse_events_page(body: bytes | str) -> tuple[list[Event], str | None]:
    """``GET /events``: the events (with ``markets`` if nested) and the next cursor."""
    page = _decode(_EVENTS_DECODER, body, "events")
    return page.events, next_cursor(page.cursor)


def parse_event(body: bytes | str) -> Event:
    """``GET /events/{event_ticker}``. A top-level ``markets`` list is folded into
    ``Event.markets`` when the event itself has none."""
    resp = _decode(_EVENT_DECODER, body, "event")
    event = resp.event
    if event.markets is None and resp.markets is not None:
        event.markets = resp.markets
    return event


def parse_series(body: bytes | str) -> Series:
    """``GET /series/{series_ticker}``."""
    return _decode(_SERIES_DECODER, body, "series").series


def parse_series_list(body: bytes | str) -> tuple[list[Series], str | None]:
    """``GET /series``: the series (null = none) and a cursor if the server sent one."""
    resp = _decode(_SERIES_LIST_DECODER, body, "series list")
    return resp.series or [], next_cursor(resp.cursor)


def parse_orderbook(body: bytes | str) -> Orderbook:
    """``GET /markets/{ticker}/orderbook``, current ``orderbook_fp`` or legacy ``orderbook``."""
    return _normalize_book(_decode(_ORDERBOOK_DECODER, body, "orderbook"))


def parse_orderbooks(body: bytes | str) -> dict[str, Orderbook]:
    """``GET /markets/orderbooks`` (batch): ticker -> book."""
    resp = _decode(_ORDERBOOKS_DECODER, body, "orderbooks")
    out: dict[str, Orderbook] = {}
    for item in resp.orderbooks:
        if item.ticker is None:
            raise RestParseError("bad orderbooks response: an item has no ticker")
        out[item.ticker] = _normalize_book(item)
    return out


def parse_trades_page(body: bytes | str) -> tuple[list[Trade], str | None]:
    """``GET /markets/trades``: the trades and the next cursor."""
    page = _decode(_TRADES_DECODER, body, "trades")
    return page.trades, next_cursor(page.cursor)
