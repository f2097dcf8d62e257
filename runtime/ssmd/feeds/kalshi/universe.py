"""Which Kalshi markets an Environment captures: its selectors resolved through REST.

Selector fields are OR-ed within a field and AND-ed across fields (``MarketSelector``). The
REST query uses the most selective field (tickers, then events, then series) and the rest
are checked locally; categories need the series (looked up once and cached). Lookups that
fail are retried by the REST client, so a market is never dropped because of a 429.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ssmd.feeds.kalshi.rest_client import KalshiRest
from ssmd.feeds.kalshi.rest_models import Market
from ssmd.spec.environment import MarketSelector

log = logging.getLogger("ssmd.connector.kalshi.universe")

# Selector status -> the REST ``status`` filter value.
STATUS_QUERY = {
    "open": "open",
    "active": "open",
    "unopened": "unopened",
    "paused": "paused",
    "closed": "closed",
    "determined": "closed",
    "settled": "settled",
}
# Market object ``status`` -> selector vocabulary.
MARKET_STATUS = {
    "active": "open",
    "open": "open",
    "initialized": "unopened",
    "unopened": "unopened",
    "inactive": "paused",
    "paused": "paused",
    "closed": "closed",
    "determined": "determined",
    "disputed": "determined",
    "amended": "determined",
    "finalized": "settled",
    "settled": "settled",
}


def _norm_status(s: str) -> str:
    return "open" if s == "active" else s


def _chunks(items: list[str], n: int) -> list[list[str]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


class Universe:
    def __init__(self, selector: MarketSelector, rest: KalshiRest) -> None:
        self.selector = selector
        self.rest = rest
        self._statuses = {_norm_status(s) for s in selector.status}
        self._tickers = set(selector.tickers)
        self._events = set(selector.events)
        self._series = set(selector.series)
        self._categories = {c.lower() for c in selector.categories}
        self._series_category: dict[str, str | None] = {}

    async def resolve(self) -> list[str]:
        """Every market the selectors match now, in the exchange's order (capped)."""
        sel = self.selector
        if sel.tickers:
            queries = [{"tickers": ",".join(c)} for c in _chunks(sorted(self._tickers), 100)]
        elif sel.events:
            queries = [{"event_ticker": ",".join(c)} for c in _chunks(sorted(self._events), 10)]
        elif sel.series:
            queries = [{"series_ticker": s} for s in sorted(self._series)]
        else:
            queries = [{}]
        statuses = sorted({STATUS_QUERY[s] for s in sel.status}) or [""]
        out: dict[str, None] = {}
        for q in queries:
            for st in statuses:
                params = {**q, "status": st} if st else dict(q)
                async for market in self.rest.markets(**params):
                    if market.ticker not in out and await self.matches(market):
                        out[market.ticker] = None
                        if sel.max_markets is not None and len(out) >= sel.max_markets:
                            return list(out)
        log.info("market selectors matched %d markets", len(out))
        return list(out)

    async def matches(self, market: Market, *, status: str | None = None) -> bool:
        if self._tickers and market.ticker not in self._tickers:
            return False
        if self._events and market.event_ticker not in self._events:
            return False
        series = market.series_ticker
        if self._series and series not in self._series:
            return False
        st = status or MARKET_STATUS.get(market.status or "", market.status or "")
        if self._statuses and st not in self._statuses:
            return False
        if self._categories:
            cat = await self.category(series)
            if cat is None or cat.lower() not in self._categories:
                return False
        return True

    def could_match(self, ticker: str, event_ticker: str | None) -> bool:
        """A cheap local pre-check before a REST lookup (lifecycle events arrive in bursts)."""
        if self._tickers and ticker not in self._tickers:
            return False
        if event_ticker:
            if self._events and event_ticker not in self._events:
                return False
            if self._series and event_ticker.split("-", 1)[0] not in self._series:
                return False
        return True

    async def category(self, series: str) -> str | None:
        if series not in self._series_category:
            s = await self.rest.series(series)
            self._series_category[series] = s.category if s is not None else None
        return self._series_category[series]

    async def lookup(self, ticker: str) -> Market | None:
        return await self.rest.market(ticker)

    def filter_known(self, tickers: Iterable[str], known: set[str]) -> list[str]:
        return [t for t in tickers if t not in known]
