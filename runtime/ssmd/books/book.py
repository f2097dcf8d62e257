"""A prediction-market L2 order book, Decimal-exact, and its normalized checkpoint.

Kalshi books hold bids only: YES bids and NO bids. A NO bid at ``p`` is a YES ask at
``1 - p``, so the YES-perspective view clients see is bids from the YES side and asks
derived from the NO side. This module is the one owner of the checkpoint format
(``{env}.{feed}.book.{ticker}``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import orjson

Side = Literal["yes", "no"]
Level = tuple[Decimal, Decimal]

ONE = Decimal(1)
ZERO = Decimal(0)
CHECKPOINT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint message that does not follow the format."""


class Book:
    """Price -> size maps for both bid sides. Mutated in place by snapshots and deltas."""

    __slots__ = ("no", "ticker", "yes")

    def __init__(self, ticker: str) -> None:
        self.ticker = ticker
        self.yes: dict[Decimal, Decimal] = {}
        self.no: dict[Decimal, Decimal] = {}

    # -- mutation --------------------------------------------------------------------------

    def apply_snapshot(self, yes: Iterable[Level], no: Iterable[Level]) -> None:
        """Replace the whole book. Zero-size levels are not kept (a level exists or not)."""
        self.yes = {p: q for p, q in yes if q != ZERO}
        self.no = {p: q for p, q in no if q != ZERO}

    def apply_delta(self, side: Side, price: Decimal, delta: Decimal) -> bool:
        """``level[side][price] += delta``; a level reaching 0 is removed.

        Returns False when the result is negative: the book is out of sync (a missed
        delta). The negative level is kept so :attr:`negative` stays visible."""
        levels = self.yes if side == "yes" else self.no
        q = levels.get(price, ZERO) + delta
        if q == ZERO:
            levels.pop(price, None)
            return True
        levels[price] = q
        return q > ZERO

    # -- queries ---------------------------------------------------------------------------

    @property
    def best_yes_bid(self) -> Decimal | None:
        return max(self.yes) if self.yes else None

    @property
    def best_no_bid(self) -> Decimal | None:
        return max(self.no) if self.no else None

    @property
    def best_yes_ask(self) -> Decimal | None:
        b = self.best_no_bid
        return None if b is None else ONE - b

    @property
    def crossed(self) -> bool:
        """YES bid >= YES ask (best YES + best NO >= 1): would have matched on the exchange."""
        y, n = self.best_yes_bid, self.best_no_bid
        return y is not None and n is not None and y + n >= ONE

    @property
    def negative(self) -> bool:
        return any(q < ZERO for q in self.yes.values()) or any(q < ZERO for q in self.no.values())

    @property
    def valid(self) -> bool:
        return not self.crossed and not self.negative

    def levels(self, side: Side) -> list[Level]:
        """One bid side ascending by price (best last), as on the wire."""
        return sorted((self.yes if side == "yes" else self.no).items())

    def bids(self, depth: int = 0) -> list[Level]:
        """YES bids, best first; ``depth`` > 0 keeps the best N."""
        out = sorted(self.yes.items(), reverse=True)
        return out[:depth] if depth > 0 else out

    def asks(self, depth: int = 0) -> list[Level]:
        """YES asks (1 - NO bid), best (lowest) first."""
        out = [(ONE - p, q) for p, q in sorted(self.no.items(), reverse=True)]
        return out[:depth] if depth > 0 else out

    def copy(self) -> Book:
        b = Book(self.ticker)
        b.yes = dict(self.yes)
        b.no = dict(self.no)
        return b

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Book):
            return NotImplemented
        return self.ticker == other.ticker and self.yes == other.yes and self.no == other.no

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Book({self.ticker!r}, yes={len(self.yes)} levels, no={len(self.no)} levels)"


def fmt_price(p: Decimal) -> str:
    """Dollars with 4 decimals, as Kalshi sends them (exact; never via float)."""
    return f"{p:.4f}"


def fmt_size(q: Decimal) -> str:
    return f"{q:.2f}"


def _parse_levels(raw: Any, what: str) -> list[Level]:
    if not isinstance(raw, list):
        raise CheckpointError(f"checkpoint {what} must be a list of [price, size]")
    try:
        return [(Decimal(p), Decimal(q)) for p, q in raw]
    except (ValueError, TypeError, InvalidOperation):
        raise CheckpointError(f"checkpoint {what} has a level that is not [price, size]") from None


@dataclass
class Checkpoint:
    """A normalized full book as published on ``{env}.{feed}.book.{ticker}``.

    ``seq`` is the JetStream sequence of the last frame this book includes: a consumer
    applies the frames after it. ``sid``/``exchange_seq`` are the exchange subscription and
    its seq at that frame. ``stale`` books carry their last levels but must not be trusted.
    Prices and sizes are strings (Decimal-exact), levels ascending (best last) per side."""

    ticker: str
    seq: int
    yes: list[Level] = field(default_factory=list)
    no: list[Level] = field(default_factory=list)
    sid: int | None = None
    conn: str = ""
    exchange_seq: int | None = None
    stale: bool = False
    ts_ms: int | None = None  # exchange time of the last frame included, when known
    published_ns: int | None = None

    @classmethod
    def of(
        cls,
        book: Book,
        *,
        seq: int,
        sid: int | None = None,
        conn: str = "",
        exchange_seq: int | None = None,
        stale: bool = False,
        ts_ms: int | None = None,
        published_ns: int | None = None,
    ) -> Checkpoint:
        return cls(
            ticker=book.ticker,
            seq=seq,
            yes=book.levels("yes"),
            no=book.levels("no"),
            sid=sid,
            conn=conn,
            exchange_seq=exchange_seq,
            stale=stale,
            ts_ms=ts_ms,
            published_ns=published_ns,
        )

    def book(self) -> Book:
        b = Book(self.ticker)
        b.apply_snapshot(self.yes, self.no)
        return b

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "v": CHECKPOINT_VERSION,
                "ticker": self.ticker,
                "seq": self.seq,
                "sid": self.sid,
                "conn": self.conn,
                "exchange_seq": self.exchange_seq,
                "stale": self.stale,
                "ts_ms": self.ts_ms,
                "published_ns": self.published_ns,
                "yes": [[fmt_price(p), fmt_size(q)] for p, q in self.yes],
                "no": [[fmt_price(p), fmt_size(q)] for p, q in self.no],
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> Checkpoint:
        try:
            d = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise CheckpointError("checkpoint is not valid JSON") from None
        if not isinstance(d, dict):
            raise CheckpointError("checkpoint must be a JSON object")
        if d.get("v") != CHECKPOINT_VERSION:
            raise CheckpointError(f"unsupported checkpoint version {d.get('v')!r}")
        ticker, seq = d.get("ticker"), d.get("seq")
        if not isinstance(ticker, str) or not isinstance(seq, int):
            raise CheckpointError("checkpoint needs a string ticker and an integer seq")
        return cls(
            ticker=ticker,
            seq=seq,
            yes=_parse_levels(d.get("yes", []), "yes"),
            no=_parse_levels(d.get("no", []), "no"),
            sid=d.get("sid"),
            conn=str(d.get("conn") or ""),
            exchange_seq=d.get("exchange_seq"),
            stale=bool(d.get("stale", False)),
            ts_ms=d.get("ts_ms"),
            published_ns=d.get("published_ns"),
        )
