"""The true order book of one market, and its wire renderings.

Both sides hold bids only, as on Kalshi: YES bids and NO bids, price in pips (1/10000 $)
mapped to a whole-contract quantity. The best YES ask is ``1 - best NO bid``; the book is
never crossed (``best_yes + best_no < 1``) and never holds a zero or negative level.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ssmd.sim.kalshi.wire import PIPS, PRICES, jstr


class MarketBook:
    """Mutable per-market trading state. Slots: the engine touches these on every event."""

    __slots__ = (
        "dv",
        "fair",
        "frozen",
        "idt",
        "last",
        "last_size",
        "no",
        "oi",
        "span",
        "tick",
        "tid",
        "tj",
        "volume",
        "yes",
    )

    def __init__(self, ticker: str, market_id: str, tick: int) -> None:
        self.yes: dict[int, int] = {}
        self.no: dict[int, int] = {}
        self.tick = tick
        self.span = 8 if tick >= 100 else 60  # how deep (in ticks) new orders rest
        self.fair = PIPS // 2
        self.last = 0  # last trade price, pips (0 = never traded)
        self.last_size = 0
        self.volume = 0
        self.oi = 0
        self.dv = 0  # traded notional in pip-contracts
        self.frozen = False  # closed markets keep their last book, unchanged
        t, i = jstr(ticker), jstr(market_id)
        self.tj = t
        # Fragments in the exchange's key order: deltas/snapshots lead with the ticker,
        # tickers lead with the id.
        self.tid = b'"market_ticker":' + t + b',"market_id":' + i
        self.idt = b'"market_id":' + i + b',"market_ticker":' + t

    def best_yes(self) -> int:
        return max(self.yes) if self.yes else 0

    def best_no(self) -> int:
        return max(self.no) if self.no else 0

    def top(self) -> tuple[int, int, int, int]:
        """(best yes bid, its size, best no bid, its size); 0s for an empty side."""
        y = max(self.yes) if self.yes else 0
        n = max(self.no) if self.no else 0
        return y, self.yes.get(y, 0), n, self.no.get(n, 0)

    def apply(self, side_yes: bool, price: int, delta: int) -> None:
        levels = self.yes if side_yes else self.no
        q = levels.get(price, 0) + delta
        if q < 0:  # a bug, never a market condition: fail loudly
            raise AssertionError(f"negative level {price} {q}")
        if q == 0:
            del levels[price]
        else:
            levels[price] = q

    def snapshot_msg(self) -> bytes:
        """The ``msg`` object of an ``orderbook_snapshot``: an empty side's key is absent."""
        parts = [b"{", self.tid]
        if self.yes:
            parts += [b',"yes_dollars_fp":[', _levels(self.yes), b"]"]
        if self.no:
            parts += [b',"no_dollars_fp":[', _levels(self.no), b"]"]
        parts.append(b"}")
        return b"".join(parts)

    def levels(self, side_yes: bool, depth: int = 0) -> list[list[str]]:
        """``[[price, count_fp], ...]`` ascending (best last); ``depth`` > 0 keeps the best N."""
        items = sorted((self.yes if side_yes else self.no).items())
        if depth > 0:
            items = items[-depth:]
        return [[PRICES[p].decode(), f"{q}.00"] for p, q in items]


def _levels(levels: dict[int, int]) -> bytes:
    return b",".join(b'["%b","%d.00"]' % (PRICES[p], q) for p, q in sorted(levels.items()))


@dataclass(frozen=True)
class TrueBook:
    """A copy of a market's book for tests and the admin API. Levels ascend, best last."""

    ticker: str
    market_id: str
    yes: tuple[tuple[Decimal, Decimal], ...]
    no: tuple[tuple[Decimal, Decimal], ...]

    @classmethod
    def of(cls, ticker: str, market_id: str, book: MarketBook) -> TrueBook:
        def conv(d: dict[int, int]) -> tuple[tuple[Decimal, Decimal], ...]:
            return tuple(
                (Decimal(PRICES[p].decode()), Decimal(f"{q}.00")) for p, q in sorted(d.items())
            )

        return cls(ticker, market_id, conv(book.yes), conv(book.no))

    @property
    def best_yes_bid(self) -> Decimal | None:
        return self.yes[-1][0] if self.yes else None

    @property
    def best_no_bid(self) -> Decimal | None:
        return self.no[-1][0] if self.no else None

    @property
    def yes_ask(self) -> Decimal | None:
        return None if not self.no else Decimal(1) - self.no[-1][0]

    def to_dict(self) -> dict[str, object]:
        return {
            "market_ticker": self.ticker,
            "market_id": self.market_id,
            "yes_dollars_fp": [[f"{p:.4f}", f"{q:.2f}"] for p, q in self.yes],
            "no_dollars_fp": [[f"{p:.4f}", f"{q:.2f}"] for p, q in self.no],
        }
