"""Kalshi WebSocket v2 frames: typed models, a fast envelope decoder, command builders.

Everything follows ``shared/reference/kalshi-protocol.md`` (sections 2 and 3):

* :func:`parse_frame` decodes one server frame into a typed msgspec Struct, dispatching on
  ``type``. Unknown types come back as :class:`UnknownFrame`; broken input raises
  :class:`FrameParseError`.
* :func:`decode_envelope` is the connector's hot path: routing fields only.
* :func:`subscribe`, :func:`unsubscribe`, :func:`update_subscription`,
  :func:`list_subscriptions` build client commands as JSON bytes.

Prices and sizes are :class:`~decimal.Decimal`. Frames carry the current dollar/fixed-point
fields (``*_dollars``, ``*_fp``, ``ts_ms``) and, for recordings made before ~March 2026, the
legacy integer-cent fields. The legacy wire names (``price``, ``yes``, ``count`` ...) are
stored under ``legacy_*`` attributes so that the plain names are free for the normalized
accessors (``delta.price``, ``delta.size``, ``snapshot.yes_levels`` ...), which work
whichever form the frame used.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any, Final, Literal, NamedTuple, get_args

import msgspec

__all__ = [
    "ERROR_CODES",
    "KNOWN_FRAME_TYPES",
    "TERMINAL_ERROR_CODES",
    "AdditionalMetadata",
    "Envelope",
    "ErrorCodeInfo",
    "ErrorFrame",
    "ErrorMsg",
    "EventFeeUpdateFrame",
    "EventFeeUpdateMsg",
    "EventLifecycleFrame",
    "EventLifecycleMsg",
    "FillFrame",
    "Frame",
    "FrameParseError",
    "Level",
    "MarketLifecycleFrame",
    "MarketLifecycleMsg",
    "MarketPositionFrame",
    "MultivariateLookupFrame",
    "MultivariateLookupMsg",
    "MultivariateMarketLifecycleFrame",
    "OkFrame",
    "OkMsg",
    "OrderbookDeltaFrame",
    "OrderbookDeltaMsg",
    "OrderbookSnapshotFrame",
    "OrderbookSnapshotMsg",
    "PriceRange",
    "SelectedMarket",
    "Side",
    "SubscribedFrame",
    "SubscriptionInfo",
    "TickerFrame",
    "TickerMsg",
    "TickerV2Frame",
    "TickerV2Msg",
    "TradeFrame",
    "TradeMsg",
    "UnknownFrame",
    "UnsubscribedFrame",
    "UpdateAction",
    "UserOrderFrame",
    "decode_envelope",
    "describe_error_code",
    "dollars_from_cents",
    "get_snapshot",
    "list_subscriptions",
    "normalize_levels",
    "parse_frame",
    "subscribe",
    "unsubscribe",
    "update_subscription",
]

Side = Literal["yes", "no"]
# One book level: (price in dollars, contract count). Both sides of a Kalshi book are bids.
Level = tuple[Decimal, Decimal]
UpdateAction = Literal["add_markets", "delete_markets", "get_snapshot"]


class FrameParseError(ValueError):
    """A frame that is not valid JSON, not a JSON object, or a known type with a bad shape."""


# --------------------------------------------------------------------------------------------
# Error codes (reference section 2.5)
# --------------------------------------------------------------------------------------------


class ErrorCodeInfo(NamedTuple):
    code: int
    name: str
    meaning: str
    # The subscription is gone after this error: re-subscribe the affected channel.
    terminal: bool = False


ERROR_CODES: Final[dict[int, ErrorCodeInfo]] = {
    info.code: info
    for info in (
        ErrorCodeInfo(1, "Unable to process message", "general processing error"),
        ErrorCodeInfo(2, "Params required", "`params` object missing"),
        ErrorCodeInfo(3, "Channels required", "`channels` missing in subscribe"),
        ErrorCodeInfo(4, "Subscription IDs required", "`sids` missing in unsubscribe"),
        ErrorCodeInfo(5, "Unknown command", "bad `cmd`"),
        ErrorCodeInfo(
            6,
            "Already subscribed",
            "retired (not emitted by current servers); was 'duplicate subscription'",
        ),
        ErrorCodeInfo(7, "Unknown subscription ID", "sid not found"),
        ErrorCodeInfo(8, "Unknown channel name", "bad channel (e.g. `ticker_v2` today)"),
        ErrorCodeInfo(9, "Authentication required", "channel needs an authenticated connection"),
        ErrorCodeInfo(10, "Channel error", "channel-specific error", terminal=True),
        ErrorCodeInfo(11, "Invalid parameter", "malformed value"),
        ErrorCodeInfo(
            12,
            "Exactly one subscription ID is required",
            "update_subscription needs exactly one sid",
        ),
        ErrorCodeInfo(13, "Unsupported action", "bad update_subscription action"),
        ErrorCodeInfo(
            14, "Market Ticker required", "market spec missing (market_ticker or market_id)"
        ),
        ErrorCodeInfo(15, "Action required", "update_subscription without `action`"),
        ErrorCodeInfo(16, "Market not found", "bad ticker or id"),
        ErrorCodeInfo(17, "Internal error", "server-side error", terminal=True),
        ErrorCodeInfo(18, "Command timeout", "server timed out on the command"),
        ErrorCodeInfo(19, "shard_factor must be > 0", "invalid communications sharding"),
        ErrorCodeInfo(
            20,
            "shard_factor is required when shard_key is set",
            "invalid communications sharding",
        ),
        ErrorCodeInfo(
            21, "shard_key must be >= 0 and < shard_factor", "invalid communications sharding"
        ),
        ErrorCodeInfo(22, "shard_factor must be <= 100", "invalid communications sharding"),
        ErrorCodeInfo(23, "Match IDs required", "match ids missing"),
        ErrorCodeInfo(24, "Index IDs required", "`cfbenchmarks_value` without index ids"),
        ErrorCodeInfo(
            25,
            "Subscription buffer overflow",
            "slow consumer; the subscription was dropped",
            terminal=True,
        ),
        ErrorCodeInfo(
            26, "Subscription market limit exceeded", "too many markets in one subscription"
        ),
        ErrorCodeInfo(27, "Too many requests", "per-subscription command rate limit"),
        # Listed in an Oct-2026 inventory ("codes 1-28") with no text known.
        ErrorCodeInfo(28, "Unknown error 28", "exists per third-party inventory; text unknown"),
    )
}

TERMINAL_ERROR_CODES: Final[frozenset[int]] = frozenset(
    code for code, info in ERROR_CODES.items() if info.terminal
)


def describe_error_code(code: int) -> ErrorCodeInfo:
    """Table entry for ``code``; codes newer than the table get a generic entry."""
    info = ERROR_CODES.get(code)
    if info is None:
        return ErrorCodeInfo(code, f"Unknown error {code}", "not in the protocol reference")
    return info


# --------------------------------------------------------------------------------------------
# Normalization helpers (shared with rest_models)
# --------------------------------------------------------------------------------------------

_ZERO = Decimal(0)
_ONE = Decimal(1)
_price_key = itemgetter(0)


def dollars_from_cents(cents: int) -> Decimal:
    """Legacy integer cents -> exact dollars (43 -> Decimal('0.43'))."""
    return Decimal(cents).scaleb(-2)


def _dollars(current: Decimal | None, legacy_cents: int | None) -> Decimal | None:
    if current is not None:
        return current
    if legacy_cents is not None:
        return dollars_from_cents(legacy_cents)
    return None


def _count(current: Decimal | None, legacy: int | None) -> Decimal | None:
    if current is not None:
        return current
    if legacy is not None:
        return Decimal(legacy)
    return None


def normalize_levels(
    fp: Sequence[Level] | None,
    dollars: Sequence[Level] | None = None,
    cents: Sequence[tuple[int, int]] | None = None,
) -> list[Level]:
    """One side of a book as ``[(price_dollars, count)]`` ascending by price (best bid last).

    Prefers the fixed-point form, then legacy ``*_dollars`` (string price, int count), then
    legacy cents. A missing/null side is empty. Sorted because the order is documented only
    for REST; the WS examples merely happen to agree.
    """
    if fp is not None:
        return sorted(fp, key=_price_key)
    if dollars is not None:
        return sorted(dollars, key=_price_key)
    if cents is not None:
        return sorted(((dollars_from_cents(p), Decimal(q)) for p, q in cents), key=_price_key)
    return []


def _rfc3339_ms(value: str | None) -> int | None:
    """The deprecated RFC3339 ``ts`` of orderbook_delta as Unix ms (None if unparsable)."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    # Integer arithmetic: a float timestamp could be off by one millisecond.
    return calendar.timegm(dt.utctimetuple()) * 1000 + dt.microsecond // 1000


def _last_price(raw: str | None, legacy_cents: int | None) -> Decimal | None:
    # "" or 0 means the market never traded (reference 3.5 / pitfall 15); no trade can
    # happen at a price of zero, so a zero last price is never a real one.
    if raw is not None and raw != "":
        try:
            price = Decimal(raw)
        except ArithmeticError:
            return None
        return price if price != _ZERO else None
    if legacy_cents:
        return dollars_from_cents(legacy_cents)
    return None


# --------------------------------------------------------------------------------------------
# Small shared structs
# --------------------------------------------------------------------------------------------


class SubscriptionInfo(msgspec.Struct, kw_only=True):
    """``{"channel": ..., "sid": ...}``: the msg of ``subscribed`` and list_subscriptions items."""

    channel: str
    sid: int


class PriceRange(msgspec.Struct, kw_only=True):
    """One band of a market's valid price grid (``price_ranges``); ticks are ``step`` apart."""

    start: Decimal
    end: Decimal
    step: Decimal


class SelectedMarket(msgspec.Struct, kw_only=True):
    event_ticker: str
    market_ticker: str
    side: str


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


class _Frame(msgspec.Struct, tag_field="type", kw_only=True):
    """Fields every frame may carry. ``id`` only on command responses, ``seq`` only on some."""

    id: int | None = None
    sid: int | None = None
    seq: int | None = None
    # When Kalshi queued the frame; for latency measurement only, not the exchange time.
    sending_ts_ms: int | None = None

    @property
    def type(self) -> str:
        return str(self.__struct_config__.tag)

    @property
    def market_ticker(self) -> str | None:
        return None

    @property
    def ts_ms(self) -> int | None:
        """Exchange time (Unix ms) from ``msg.ts_ms`` when the frame has one."""
        return None


# -- command responses (section 2) -----------------------------------------------------------


class SubscribedFrame(_Frame, tag="subscribed"):
    # Very old servers sent no msg at all.
    msg: SubscriptionInfo | None = None

    def __post_init__(self) -> None:
        # The new sid lives in msg; lift it so `frame.sid` means "the subscription this
        # frame is about" for every frame type (the envelope decoder does the same).
        if self.sid is None and self.msg is not None:
            self.sid = self.msg.sid

    @property
    def channel(self) -> str | None:
        return self.msg.channel if self.msg is not None else None


class UnsubscribedFrame(_Frame, tag="unsubscribed"):
    sid: int


class OkMsg(msgspec.Struct, kw_only=True):
    # All markets in the subscription after the update; absent with skip_ticker_ack.
    market_tickers: list[str] | None = None
    market_ids: list[str] | None = None


class OkFrame(_Frame, tag="ok"):
    """``update_subscription`` (msg is an object) or ``list_subscriptions`` (msg is an array)."""

    msg: OkMsg | list[SubscriptionInfo] | None = None

    @property
    def market_tickers(self) -> list[str] | None:
        return self.msg.market_tickers if isinstance(self.msg, OkMsg) else None

    @property
    def market_ids(self) -> list[str] | None:
        return self.msg.market_ids if isinstance(self.msg, OkMsg) else None

    @property
    def subscriptions(self) -> list[SubscriptionInfo] | None:
        """The list_subscriptions answer, or None for the update_subscription form."""
        return self.msg if isinstance(self.msg, list) else None


class ErrorMsg(msgspec.Struct, kw_only=True):
    code: int
    msg: str = ""
    market_ticker: str | None = None
    market_id: str | None = None


class ErrorFrame(_Frame, tag="error"):
    msg: ErrorMsg

    @property
    def code(self) -> int:
        return self.msg.code

    @property
    def message(self) -> str:
        return self.msg.msg

    @property
    def market_ticker(self) -> str | None:
        return self.msg.market_ticker

    @property
    def info(self) -> ErrorCodeInfo:
        return describe_error_code(self.msg.code)

    @property
    def is_terminal(self) -> bool:
        return self.msg.code in TERMINAL_ERROR_CODES


# -- order book (sections 3.2-3.4) -----------------------------------------------------------


class OrderbookSnapshotMsg(msgspec.Struct, kw_only=True):
    market_ticker: str
    market_id: str | None = None
    # A side with no resting orders has its key missing, hence None.
    yes_dollars_fp: list[Level] | None = None
    no_dollars_fp: list[Level] | None = None
    # Legacy (<= ~Mar 2026): [[cents, count]] and [["0.080", 300]].
    legacy_yes: list[tuple[int, int]] | None = msgspec.field(default=None, name="yes")
    legacy_no: list[tuple[int, int]] | None = msgspec.field(default=None, name="no")
    legacy_yes_dollars: list[Level] | None = msgspec.field(default=None, name="yes_dollars")
    legacy_no_dollars: list[Level] | None = msgspec.field(default=None, name="no_dollars")


class OrderbookSnapshotFrame(_Frame, tag="orderbook_snapshot"):
    sid: int
    seq: int
    msg: OrderbookSnapshotMsg

    @property
    def market_ticker(self) -> str:
        return self.msg.market_ticker

    @property
    def market_id(self) -> str | None:
        return self.msg.market_id

    @property
    def yes_levels(self) -> list[Level]:
        """YES bids as ``[(price, count)]``, ascending (best last)."""
        m = self.msg
        return normalize_levels(m.yes_dollars_fp, m.legacy_yes_dollars, m.legacy_yes)

    @property
    def no_levels(self) -> list[Level]:
        """NO bids as ``[(price, count)]``, ascending (best last)."""
        m = self.msg
        return normalize_levels(m.no_dollars_fp, m.legacy_no_dollars, m.legacy_no)


class OrderbookDeltaMsg(msgspec.Struct, kw_only=True):
    market_ticker: str
    side: Side
    market_id: str | None = None
    price_dollars: Decimal | None = None
    delta_fp: Decimal | None = None  # signed change in contracts, not a new absolute size
    client_order_id: str | None = None  # only when your own order caused the change
    subaccount: int | None = None
    ts: str | None = None  # deprecated RFC3339 (a string here, unlike ticker/trade)
    ts_ms: int | None = None
    legacy_price: int | None = msgspec.field(default=None, name="price")
    legacy_delta: int | None = msgspec.field(default=None, name="delta")

    def __post_init__(self) -> None:
        # A delta without a price or a change cannot be applied; reject it here rather than
        # let a book silently skip it.
        if self.price_dollars is None and self.legacy_price is None:
            raise ValueError("orderbook_delta has neither price_dollars nor price")
        if self.delta_fp is None and self.legacy_delta is None:
            raise ValueError("orderbook_delta has neither delta_fp nor delta")


class OrderbookDeltaFrame(_Frame, tag="orderbook_delta"):
    sid: int
    seq: int
    msg: OrderbookDeltaMsg

    @property
    def market_ticker(self) -> str:
        return self.msg.market_ticker

    @property
    def market_id(self) -> str | None:
        return self.msg.market_id

    @property
    def side(self) -> Side:
        return self.msg.side

    @property
    def price(self) -> Decimal:
        """Level price in dollars (on the ``side`` leg)."""
        m = self.msg
        if m.price_dollars is not None:
            return m.price_dollars
        assert m.legacy_price is not None  # guaranteed by __post_init__
        return dollars_from_cents(m.legacy_price)

    @property
    def size(self) -> Decimal:
        """Signed change in contracts: ``level[side][price] += size``."""
        m = self.msg
        if m.delta_fp is not None:
            return m.delta_fp
        assert m.legacy_delta is not None  # guaranteed by __post_init__
        return Decimal(m.legacy_delta)

    @property
    def client_order_id(self) -> str | None:
        return self.msg.client_order_id

    @property
    def ts_ms(self) -> int | None:
        return self.msg.ts_ms

    @property
    def timestamp_ms(self) -> int | None:
        """``ts_ms``, else the deprecated RFC3339 ``ts`` converted to ms."""
        return self.msg.ts_ms if self.msg.ts_ms is not None else _rfc3339_ms(self.msg.ts)


# -- ticker (section 3.5) --------------------------------------------------------------------


class TickerMsg(msgspec.Struct, kw_only=True):
    market_ticker: str
    market_id: str | None = None
    # Kept as the wire string: it is "" for a market that never traded, which no Decimal
    # field could hold. Use TickerFrame.last_price.
    price_dollars: str | None = None
    yes_bid_dollars: Decimal | None = None
    yes_ask_dollars: Decimal | None = None
    volume_fp: Decimal | None = None
    open_interest_fp: Decimal | None = None
    dollar_volume: int | None = None  # whole dollars
    dollar_open_interest: int | None = None
    yes_bid_size_fp: Decimal | None = None
    yes_ask_size_fp: Decimal | None = None  # size of the best NO bid
    last_trade_size_fp: Decimal | None = None
    ts: int | None = None  # deprecated, Unix seconds
    ts_ms: int | None = None
    time: str | None = None  # deprecated RFC3339
    legacy_price: int | None = msgspec.field(default=None, name="price")
    legacy_yes_bid: int | None = msgspec.field(default=None, name="yes_bid")
    legacy_yes_ask: int | None = msgspec.field(default=None, name="yes_ask")
    legacy_volume: int | None = msgspec.field(default=None, name="volume")
    legacy_open_interest: int | None = msgspec.field(default=None, name="open_interest")
    legacy_clock: int | None = msgspec.field(default=None, name="Clock")


class TickerFrame(_Frame, tag="ticker"):
    """Latest-wins top-of-book state; no ``seq``."""

    msg: TickerMsg

    @property
    def market_ticker(self) -> str:
        return self.msg.market_ticker

    @property
    def last_price(self) -> Decimal | None:
        """Last traded price; None when the market has never traded (``""``/zero)."""
        return _last_price(self.msg.price_dollars, self.msg.legacy_price)

    @property
    def yes_bid(self) -> Decimal | None:
        return _dollars(self.msg.yes_bid_dollars, self.msg.legacy_yes_bid)

    @property
    def yes_ask(self) -> Decimal | None:
        return _dollars(self.msg.yes_ask_dollars, self.msg.legacy_yes_ask)

    @property
    def yes_bid_size(self) -> Decimal | None:
        return self.msg.yes_bid_size_fp

    @property
    def yes_ask_size(self) -> Decimal | None:
        return self.msg.yes_ask_size_fp

    @property
    def last_trade_size(self) -> Decimal | None:
        return self.msg.last_trade_size_fp

    @property
    def volume(self) -> Decimal | None:
        return _count(self.msg.volume_fp, self.msg.legacy_volume)

    @property
    def open_interest(self) -> Decimal | None:
        return _count(self.msg.open_interest_fp, self.msg.legacy_open_interest)

    @property
    def ts_ms(self) -> int | None:
        return self.msg.ts_ms

    @property
    def timestamp_ms(self) -> int | None:
        """``ts_ms``, else the deprecated seconds ``ts`` times 1000."""
        m = self.msg
        return m.ts_ms if m.ts_ms is not None else (m.ts * 1000 if m.ts is not None else None)


class TickerV2Msg(msgspec.Struct, kw_only=True):
    """Incremental ticker (~late 2025 to Feb 2026, now gone); only for old recordings."""

    market_ticker: str
    market_id: str | None = None
    price_dollars: str | None = None
    yes_bid_dollars: Decimal | None = None
    yes_ask_dollars: Decimal | None = None
    volume_delta_fp: Decimal | None = None
    open_interest_delta_fp: Decimal | None = None
    dollar_volume_delta: int | None = None
    dollar_open_interest_delta: int | None = None
    ts: int | None = None
    ts_ms: int | None = None
    legacy_price: int | None = msgspec.field(default=None, name="price")
    legacy_yes_bid: int | None = msgspec.field(default=None, name="yes_bid")
    legacy_yes_ask: int | None = msgspec.field(default=None, name="yes_ask")
    legacy_volume_delta: int | None = msgspec.field(default=None, name="volume_delta")
    legacy_open_interest_delta: int | None = msgspec.field(default=None, name="open_interest_delta")


class TickerV2Frame(_Frame, tag="ticker_v2"):
    msg: TickerV2Msg

    @property
    def market_ticker(self) -> str:
        return self.msg.market_ticker

    @property
    def last_price(self) -> Decimal | None:
        return _last_price(self.msg.price_dollars, self.msg.legacy_price)

    @property
    def yes_bid(self) -> Decimal | None:
        return _dollars(self.msg.yes_bid_dollars, self.msg.legacy_yes_bid)

    @property
    def yes_ask(self) -> Decimal | None:
        return _dollars(self.msg.yes_ask_dollars, self.msg.legacy_yes_ask)

    @property
    def volume_delta(self) -> Decimal | None:
        return _count(self.msg.volume_delta_fp, self.msg.legacy_volume_delta)

    @property
    def open_interest_delta(self) -> Decimal | None:
        return _count(self.msg.open_interest_delta_fp, self.msg.legacy_open_interest_delta)

    @property
    def ts_ms(self) -> int | None:
        return self.msg.ts_ms


# -- trade (section 3.6) ---------------------------------------------------------------------


class TradeMsg(msgspec.Struct, kw_only=True):
    trade_id: str
    market_ticker: str
    yes_price_dollars: Decimal | None = None
    no_price_dollars: Decimal | None = None
    count_fp: Decimal | None = None
    taker_outcome_side: str | None = None  # "yes" = bought YES or sold NO
    taker_book_side: str | None = None  # "bid" == yes, "ask" == no
    taker_side: str | None = None  # deprecated 2026-05
    is_block_trade: bool | None = None
    ts: int | None = None  # deprecated, Unix seconds
    ts_ms: int | None = None
    legacy_yes_price: int | None = msgspec.field(default=None, name="yes_price")
    legacy_no_price: int | None = msgspec.field(default=None, name="no_price")
    legacy_count: int | None = msgspec.field(default=None, name="count")
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


def _yes_price(yes_dollars: Decimal | None, yes_cents: int | None, cents: int | None) -> Decimal:
    price = _dollars(yes_dollars, yes_cents if yes_cents is not None else cents)
    assert price is not None  # guaranteed by the callers' validation
    return price


def _outcome_side(outcome: str | None, legacy_taker_side: str | None) -> str | None:
    return outcome if outcome is not None else legacy_taker_side


def _book_side(book: str | None, outcome: str | None) -> str | None:
    if book is not None:
        return book
    # "bid" == yes and "ask" == no, always (reference 3.6, order_direction page).
    return {"yes": "bid", "no": "ask"}.get(outcome or "")


class TradeFrame(_Frame, tag="trade"):
    """A public trade. WS trades name the market ``market_ticker``; REST trades ``ticker``."""

    msg: TradeMsg

    @property
    def market_ticker(self) -> str:
        return self.msg.market_ticker

    @property
    def trade_id(self) -> str:
        return self.msg.trade_id

    @property
    def yes_price(self) -> Decimal:
        m = self.msg
        return _yes_price(m.yes_price_dollars, m.legacy_yes_price, m.legacy_price)

    @property
    def no_price(self) -> Decimal:
        m = self.msg
        no = _dollars(m.no_price_dollars, m.legacy_no_price)
        return no if no is not None else _ONE - self.yes_price

    @property
    def price(self) -> Decimal:
        """The YES price (both parties trade at the same price)."""
        return self.yes_price

    @property
    def size(self) -> Decimal:
        count = _count(self.msg.count_fp, self.msg.legacy_count)
        assert count is not None  # guaranteed by TradeMsg.__post_init__
        return count

    @property
    def taker_outcome_side(self) -> str | None:
        return _outcome_side(self.msg.taker_outcome_side, self.msg.taker_side)

    @property
    def taker_book_side(self) -> str | None:
        return _book_side(self.msg.taker_book_side, self.taker_outcome_side)

    @property
    def ts_ms(self) -> int | None:
        return self.msg.ts_ms

    @property
    def timestamp_ms(self) -> int | None:
        m = self.msg
        return m.ts_ms if m.ts_ms is not None else (m.ts * 1000 if m.ts is not None else None)


# -- lifecycle (section 3.7) -----------------------------------------------------------------


class AdditionalMetadata(msgspec.Struct, kw_only=True):
    name: str | None = None
    title: str | None = None
    yes_sub_title: str | None = None
    no_sub_title: str | None = None
    rules_primary: str | None = None
    rules_secondary: str | None = None
    can_close_early: bool | None = None
    event_ticker: str | None = None
    expected_expiration_ts: int | None = None
    strike_type: str | None = None
    floor_strike: Decimal | None = None
    cap_strike: Decimal | None = None
    custom_strike: Any = None  # free-form object


class MarketLifecycleMsg(msgspec.Struct, kw_only=True):
    """Which optional fields appear depends on ``event_type`` (reference 3.7 table).
    Timestamps here are Unix seconds."""

    event_type: str
    market_ticker: str
    open_ts: int | None = None
    close_ts: int | None = None
    additional_metadata: AdditionalMetadata | None = None
    price_level_structure: str | None = None
    price_ranges: list[PriceRange] | None = None
    fractional_trading_enabled: bool | None = None
    is_deactivated: bool | None = None
    result: str | None = None
    determination_ts: int | None = None
    settlement_value: Decimal | None = None
    settled_ts: int | None = None
    strike_type: str | None = None
    floor_strike: Decimal | None = None
    cap_strike: Decimal | None = None
    custom_strike: Any = None
    yes_sub_title: str | None = None


class MarketLifecycleFrame(_Frame, tag="market_lifecycle_v2"):
    msg: MarketLifecycleMsg

    @property
    def market_ticker(self) -> str:
        return self.msg.market_ticker

    @property
    def event_type(self) -> str:
        return self.msg.event_type


class MultivariateMarketLifecycleFrame(_Frame, tag="multivariate_market_lifecycle"):
    """Same payload as ``market_lifecycle_v2``, combo (MVE) markets only."""

    msg: MarketLifecycleMsg

    @property
    def market_ticker(self) -> str:
        return self.msg.market_ticker

    @property
    def event_type(self) -> str:
        return self.msg.event_type


class EventLifecycleMsg(msgspec.Struct, kw_only=True):
    event_ticker: str
    title: str = ""
    subtitle: str = ""
    collateral_return_type: str = ""  # "MECNET" | "DIRECNET" | ""
    series_ticker: str = ""
    strike_date: int | None = None  # Unix seconds
    strike_period: str | None = None
    # One third party logged the key as sub_title; kept so such recordings keep the text.
    sub_title: str | None = None


class EventLifecycleFrame(_Frame, tag="event_lifecycle"):
    msg: EventLifecycleMsg

    @property
    def event_ticker(self) -> str:
        return self.msg.event_ticker


class EventFeeUpdateMsg(msgspec.Struct, kw_only=True):
    event_ticker: str
    # null = override cleared
    fee_type_override: str | None = None
    fee_multiplier_override: Decimal | None = None


class EventFeeUpdateFrame(_Frame, tag="event_fee_update"):
    msg: EventFeeUpdateMsg

    @property
    def event_ticker(self) -> str:
        return self.msg.event_ticker


# -- multivariate lookup (section 3.8, deprecated channel) -----------------------------------


class MultivariateLookupMsg(msgspec.Struct, kw_only=True):
    collection_ticker: str
    event_ticker: str
    market_ticker: str
    selected_markets: list[SelectedMarket] = msgspec.field(default_factory=list)


class MultivariateLookupFrame(_Frame, tag="multivariate_lookup"):
    msg: MultivariateLookupMsg

    @property
    def market_ticker(self) -> str:
        return self.msg.market_ticker


# -- private channels (section 3.9): shapes not in the reference, so msg stays a dict ---------


class FillFrame(_Frame, tag="fill"):
    msg: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def market_ticker(self) -> str | None:
        value = self.msg.get("market_ticker")
        return value if isinstance(value, str) else None


class UserOrderFrame(_Frame, tag="user_order"):
    msg: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def market_ticker(self) -> str | None:
        # user_orders names the market `ticker`, unlike the public channels.
        value = self.msg.get("ticker", self.msg.get("market_ticker"))
        return value if isinstance(value, str) else None


class MarketPositionFrame(_Frame, tag="market_position"):
    msg: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def market_ticker(self) -> str | None:
        value = self.msg.get("market_ticker")
        return value if isinstance(value, str) else None


# -- unknown ---------------------------------------------------------------------------------


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class UnknownFrame(msgspec.Struct, kw_only=True):
    """A frame whose ``type`` this module does not model (new channel, private RFQ traffic...)."""

    type: str
    raw: dict[str, Any]

    @property
    def id(self) -> int | None:
        return _int_or_none(self.raw.get("id"))

    @property
    def sid(self) -> int | None:
        return _int_or_none(self.raw.get("sid"))

    @property
    def seq(self) -> int | None:
        return _int_or_none(self.raw.get("seq"))

    @property
    def sending_ts_ms(self) -> int | None:
        return _int_or_none(self.raw.get("sending_ts_ms"))

    @property
    def market_ticker(self) -> str | None:
        msg = self.raw.get("msg")
        if not isinstance(msg, dict):
            return None
        value = msg.get("market_ticker", msg.get("ticker"))
        return value if isinstance(value, str) else None

    @property
    def ts_ms(self) -> int | None:
        msg = self.raw.get("msg")
        return _int_or_none(msg.get("ts_ms")) if isinstance(msg, dict) else None


KnownFrame = (
    SubscribedFrame
    | UnsubscribedFrame
    | OkFrame
    | ErrorFrame
    | OrderbookSnapshotFrame
    | OrderbookDeltaFrame
    | TickerFrame
    | TickerV2Frame
    | TradeFrame
    | MarketLifecycleFrame
    | MultivariateMarketLifecycleFrame
    | EventLifecycleFrame
    | EventFeeUpdateFrame
    | MultivariateLookupFrame
    | FillFrame
    | UserOrderFrame
    | MarketPositionFrame
)
Frame = KnownFrame | UnknownFrame

_KNOWN_CLASSES: tuple[type[_Frame], ...] = get_args(KnownFrame)
KNOWN_FRAME_TYPES: Final[frozenset[str]] = frozenset(
    str(cls.__struct_config__.tag) for cls in _KNOWN_CLASSES
)

_FRAME_DECODER: Final = msgspec.json.Decoder(KnownFrame)
_ANY_DECODER: Final = msgspec.json.Decoder()


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def parse_frame(data: bytes | str) -> Frame:
    """Decode one server frame.

    Returns the typed frame for known types and :class:`UnknownFrame` for others; raises
    :class:`FrameParseError` for invalid JSON, a non-object, a missing ``type``, or a known
    type whose fields do not fit (for example a delta without ``side``).
    """
    try:
        return _FRAME_DECODER.decode(data)
    except msgspec.ValidationError as exc:
        problem = exc  # valid JSON; find out below whether the type is merely unknown
    except msgspec.DecodeError as exc:
        raise FrameParseError(f"malformed JSON frame: {_one_line(exc)}") from None
    raw = _ANY_DECODER.decode(data)
    if not isinstance(raw, dict):
        raise FrameParseError(f"frame is a JSON {type(raw).__name__}, not an object")
    frame_type = raw.get("type")
    if not isinstance(frame_type, str):
        raise FrameParseError("frame has no string 'type' field")
    if frame_type not in KNOWN_FRAME_TYPES:
        return UnknownFrame(type=frame_type, raw=raw)
    raise FrameParseError(f"invalid {frame_type} frame: {_one_line(problem)}")


# --------------------------------------------------------------------------------------------
# Envelope: the connector hot path
# --------------------------------------------------------------------------------------------


class _EnvelopeMsg(msgspec.Struct, gc=False):
    market_ticker: str | None = None
    ticker: str | None = None  # user_order and REST-ish shapes
    ts_ms: int | None = None
    sid: int | None = None  # subscribed puts the new sid here


class Envelope(msgspec.Struct, gc=False):
    """Routing fields of a frame; everything else is skipped by the decoder, unparsed.

    ``ts_ms`` is the exchange time from ``msg.ts_ms``; ``sending_ts_ms`` is when Kalshi
    queued the frame (latency only) and is never substituted for it.
    """

    type: str
    id: int | None = None
    top_sid: int | None = msgspec.field(default=None, name="sid")
    seq: int | None = None
    sending_ts_ms: int | None = None
    msg: _EnvelopeMsg | list[Any] | None = None

    @property
    def sid(self) -> int | None:
        """Top-level ``sid``, else ``msg.sid`` (the ``subscribed`` response)."""
        if self.top_sid is not None:
            return self.top_sid
        m = self.msg
        return m.sid if isinstance(m, _EnvelopeMsg) else None

    @property
    def market_ticker(self) -> str | None:
        m = self.msg
        if not isinstance(m, _EnvelopeMsg):
            return None
        return m.market_ticker if m.market_ticker is not None else m.ticker

    @property
    def ts_ms(self) -> int | None:
        m = self.msg
        return m.ts_ms if isinstance(m, _EnvelopeMsg) else None


# Created once: building a Decoder compiles the type and is far slower than decoding.
_ENVELOPE_DECODER: Final = msgspec.json.Decoder(Envelope)
_decode_envelope = _ENVELOPE_DECODER.decode


def decode_envelope(data: bytes) -> Envelope:
    """Decode only ``type``, ``id``, ``sid``, ``seq``, ``sending_ts_ms`` and, from ``msg``,
    ``market_ticker`` (or ``ticker``), ``ts_ms`` and ``sid``. Raises FrameParseError."""
    try:
        return _decode_envelope(data)
    except msgspec.DecodeError as exc:
        raise FrameParseError(f"bad frame envelope: {_one_line(exc)}") from None


# --------------------------------------------------------------------------------------------
# Client -> server commands (section 2)
# --------------------------------------------------------------------------------------------

_UPDATE_ACTIONS: Final[frozenset[str]] = frozenset(
    ("add_markets", "delete_markets", "get_snapshot")
)
_encode = msgspec.json.encode


def _check_id(id: int) -> None:
    # id 0 counts as "no id", so its response could not be matched.
    if isinstance(id, bool) or not isinstance(id, int) or id < 1:
        raise ValueError(f"command id must be an integer >= 1, got {id!r}")


def _str_list(name: str, values: Sequence[str]) -> list[str]:
    # A bare string is a Sequence[str] too; iterating it would send one market per letter.
    if isinstance(values, str):
        raise ValueError(f"{name} must be a list of strings, not a string")
    out = list(values)
    if not out:
        raise ValueError(f"{name} must not be empty")
    for v in out:
        if not isinstance(v, str) or not v:
            raise ValueError(f"{name} must hold non-empty strings, got {v!r}")
    return out


def _market_params(
    params: dict[str, Any],
    market_ticker: str | None,
    market_tickers: Sequence[str] | None,
    market_id: str | None,
    market_ids: Sequence[str] | None,
) -> None:
    given = [
        name
        for name, value in (
            ("market_ticker", market_ticker),
            ("market_tickers", market_tickers),
            ("market_id", market_id),
            ("market_ids", market_ids),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ValueError(f"give only one market selector, got {', '.join(given)}")
    if market_ticker is not None:
        if not isinstance(market_ticker, str) or not market_ticker:
            raise ValueError("market_ticker must be a non-empty string")
        params["market_ticker"] = market_ticker
    elif market_tickers is not None:
        params["market_tickers"] = _str_list("market_tickers", market_tickers)
    elif market_id is not None:
        if not isinstance(market_id, str) or not market_id:
            raise ValueError("market_id must be a non-empty string")
        params["market_id"] = market_id
    elif market_ids is not None:
        params["market_ids"] = _str_list("market_ids", market_ids)


def subscribe(
    id: int,
    channels: Sequence[str],
    market_tickers: Sequence[str] | None = None,
    send_initial_snapshot: bool = False,
    *,
    market_ticker: str | None = None,
    market_id: str | None = None,
    market_ids: Sequence[str] | None = None,
    skip_ticker_ack: bool = False,
    use_yes_price: bool | None = None,
    shard_factor: int | None = None,
    shard_key: int | None = None,
) -> bytes:
    """``{"id":..,"cmd":"subscribe","params":{"channels":[..], ...}}``.

    Use ``market_ticker`` for one market or ``market_tickers`` for several (never both);
    ``market_id(s)`` only on the ``ticker`` channel. No market = all markets (firehose),
    which ``orderbook_delta`` does not allow. Flags are sent only when set.
    """
    _check_id(id)
    chans = _str_list("channels", channels)
    params: dict[str, Any] = {"channels": chans}
    _market_params(params, market_ticker, market_tickers, market_id, market_ids)
    if ("market_id" in params or "market_ids" in params) and any(c != "ticker" for c in chans):
        raise ValueError("market_id/market_ids work only on the ticker channel")
    if "orderbook_delta" in chans and not ("market_ticker" in params or "market_tickers" in params):
        raise ValueError("orderbook_delta needs market_ticker or market_tickers")
    if send_initial_snapshot:
        params["send_initial_snapshot"] = True
    if skip_ticker_ack:
        params["skip_ticker_ack"] = True
    if use_yes_price is not None:
        params["use_yes_price"] = bool(use_yes_price)
    if shard_key is not None and shard_factor is None:
        raise ValueError("shard_key needs shard_factor")  # server error 20
    if shard_factor is not None:
        if not 1 <= shard_factor <= 100:
            raise ValueError("shard_factor must be between 1 and 100")  # errors 19/22
        params["shard_factor"] = shard_factor
        if shard_key is not None:
            if not 0 <= shard_key < shard_factor:
                raise ValueError("shard_key must be >= 0 and < shard_factor")  # error 21
            params["shard_key"] = shard_key
    return _encode({"id": id, "cmd": "subscribe", "params": params})


def unsubscribe(id: int, sids: Sequence[int]) -> bytes:
    """``{"id":..,"cmd":"unsubscribe","params":{"sids":[..]}}``; one ``unsubscribed`` per sid."""
    _check_id(id)
    out = list(sids)
    if not out:
        raise ValueError("sids must not be empty")
    for s in out:
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise ValueError(f"sids must hold integers >= 1, got {s!r}")
    return _encode({"id": id, "cmd": "unsubscribe", "params": {"sids": out}})


def update_subscription(
    id: int,
    sid: int,
    action: UpdateAction,
    market_tickers: Sequence[str] | None = None,
    *,
    market_ticker: str | None = None,
    market_id: str | None = None,
    market_ids: Sequence[str] | None = None,
    send_initial_snapshot: bool = False,
    sid_as_list: bool = False,
) -> bytes:
    """``{"id":..,"cmd":"update_subscription","params":{"sid":..,"action":..,"market_tickers":[..]}}``.

    Exactly one subscription per command: anything else gets error 12 from the server,
    so ``sid`` is a single int. ``sid_as_list`` sends the equivalent ``"sids": [sid]`` form.
    ``get_snapshot`` re-sends orderbook snapshots without changing the subscription.
    """
    _check_id(id)
    if isinstance(sid, bool) or not isinstance(sid, int) or sid < 1:
        raise ValueError(
            f"update_subscription takes exactly one sid (an integer >= 1), got {sid!r}"
        )
    if action not in _UPDATE_ACTIONS:
        raise ValueError(f"action must be one of {sorted(_UPDATE_ACTIONS)}, got {action!r}")
    params: dict[str, Any] = {"sids": [sid]} if sid_as_list else {"sid": sid}
    params["action"] = action
    _market_params(params, market_ticker, market_tickers, market_id, market_ids)
    if len(params) == 2:
        raise ValueError(f"{action} needs market_ticker(s) or market_id(s)")  # error 14
    if send_initial_snapshot:
        params["send_initial_snapshot"] = True
    return _encode({"id": id, "cmd": "update_subscription", "params": params})


def get_snapshot(id: int, sid: int, market_tickers: Sequence[str]) -> bytes:
    """Ask for fresh ``orderbook_snapshot`` frames on ``sid``: the documented gap recovery."""
    return update_subscription(id, sid, "get_snapshot", market_tickers)


def list_subscriptions(id: int) -> bytes:
    """``{"id":..,"cmd":"list_subscriptions"}`` (no params); answered by an array ``ok``."""
    _check_id(id)
    return _encode({"id": id, "cmd": "list_subscriptions"})
