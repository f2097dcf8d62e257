"""REST v2 market data (kalshi-protocol.md §4): markets, orderbook, trades, events, series.

No auth, like the exchange's public GETs. Lists page with an opaque ``cursor`` that is
the empty string on the last page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from ssmd.feeds.kalshi import REST_PREFIX
from ssmd.sim.kalshi.engine import Engine, TradeRecord
from ssmd.sim.kalshi.faults import FaultBoard
from ssmd.sim.kalshi.universe import STATUS_FILTER, Event, Market, Series, Universe
from ssmd.sim.kalshi.wire import PIPS, PRICES, price_str, rfc3339_ms, rfc3339_s


class BadRequest(Exception):
    pass


T = TypeVar("T")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"code": code, "message": message, "details": ""}, status)


def _int(q: Any, name: str, default: int | None, lo: int, hi: int | None = None) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if v < lo or (hi is not None and v > hi):
        raise BadRequest(
            f"{name} must be between {lo} and {hi}" if hi is not None else f"{name} must be >= {lo}"
        )
    return v


def _cursor(q: Any) -> int:
    raw = q.get("cursor", "")
    if not raw:
        return 0
    if not raw.isdigit():
        raise BadRequest("invalid cursor")
    return int(raw)


def _csv(q: Any, name: str) -> set[str] | None:
    raw = q.get(name)
    if not raw:
        return None
    return {s for s in raw.split(",") if s}


class Rest:
    def __init__(self, universe: Universe, engine: Engine, board: FaultBoard) -> None:
        self.u = universe
        self.e = engine
        self.board = board

    def routes(self) -> list[web.RouteDef]:
        p = REST_PREFIX
        return [
            web.get(f"{p}/markets", self._wrap(self.markets)),
            web.get(f"{p}/markets/trades", self._wrap(self.trades)),
            web.get(f"{p}/markets/{{ticker}}", self._wrap(self.market)),
            web.get(f"{p}/markets/{{ticker}}/orderbook", self._wrap(self.orderbook)),
            web.get(f"{p}/events", self._wrap(self.events)),
            web.get(f"{p}/events/{{event_ticker}}", self._wrap(self.event)),
            web.get(f"{p}/series", self._wrap(self.series_list)),
            web.get(f"{p}/series/{{series_ticker}}", self._wrap(self.series)),
            web.get(f"{p}/exchange/status", self._wrap(self.exchange_status)),
        ]

    def _wrap(self, fn: Callable[[web.Request], web.Response]) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            if self.board.take_rest_429():
                # The exchange's 429: this body, and no Retry-After / X-RateLimit-* headers.
                return _json({"error": "too many requests"}, 429)
            try:
                return fn(request)
            except BadRequest as exc:
                return _error(400, "bad_request", str(exc))

        return handler

    # -- shapes ---------------------------------------------------------------------------

    def market_json(self, m: Market) -> dict[str, Any]:
        b = self.e.books[m.index]
        y, ys, n, ns = b.top()
        d: dict[str, Any] = {
            "ticker": m.ticker,
            "event_ticker": m.event_ticker,
            "market_type": "binary",
            "title": m.title,
            "subtitle": m.yes_sub_title,
            "yes_sub_title": m.yes_sub_title,
            "no_sub_title": m.no_sub_title,
            "created_time": rfc3339_ms(m.created_ms),
            "updated_time": rfc3339_ms(m.updated_ms),
            "open_time": rfc3339_s(m.open_ts),
            "close_time": rfc3339_s(m.close_ts),
            "expected_expiration_time": rfc3339_s(m.expected_expiration_ts),
            "expiration_time": rfc3339_s(m.expected_expiration_ts),
            "latest_expiration_time": rfc3339_s(m.expected_expiration_ts + 7 * 86_400),
            "settlement_timer_seconds": 300,
            "status": m.status.value,
            "response_price_units": "usd_cent",
            "yes_bid_dollars": price_str(y),
            "yes_ask_dollars": price_str(PIPS - n),
            "no_bid_dollars": price_str(n),
            "no_ask_dollars": price_str(PIPS - y),
            "yes_bid_size_fp": f"{ys}.00",
            "yes_ask_size_fp": f"{ns}.00",
            "last_price_dollars": price_str(b.last),
            "previous_yes_bid_dollars": price_str(y),
            "previous_yes_ask_dollars": price_str(PIPS - n),
            "previous_price_dollars": price_str(b.last),
            "volume_fp": f"{b.volume}.00",
            "volume_24h_fp": f"{b.volume}.00",
            "open_interest_fp": f"{b.oi}.00",
            "notional_value_dollars": "1.0000",
            "liquidity_dollars": "0.0000",
            "result": m.result,
            "can_close_early": m.can_close_early,
            "fractional_trading_enabled": False,
            "expiration_value": "",
            "rules_primary": m.rules_primary,
            "rules_secondary": "",
            "strike_type": m.strike_type,
        }
        if m.floor_strike is not None:
            d["floor_strike"] = m.floor_strike
        if m.cap_strike is not None:
            d["cap_strike"] = m.cap_strike
        if m.custom_strike is not None:
            d["custom_strike"] = m.custom_strike
        d["price_level_structure"] = m.price_level_structure
        d["price_ranges"] = [{"start": "0.0000", "end": "1.0000", "step": PRICES[m.tick].decode()}]
        if m.settlement_value is not None:
            d["settlement_value_dollars"] = price_str(m.settlement_value)
        if m.settled_ts is not None:
            d["settlement_ts"] = rfc3339_s(m.settled_ts)
        return d

    def event_json(self, ev: Event, nested: bool) -> dict[str, Any]:
        d: dict[str, Any] = {
            "event_ticker": ev.event_ticker,
            "series_ticker": ev.series_ticker,
            "sub_title": ev.sub_title,
            "title": ev.title,
            "collateral_return_type": ev.collateral_return_type,
            "mutually_exclusive": ev.mutually_exclusive,
            "category": ev.category,
            "available_on_brokers": True,
        }
        if ev.strike_date is not None:
            d["strike_date"] = rfc3339_s(ev.strike_date)
        if nested:
            d["markets"] = [self.market_json(self.u.markets[i]) for i in ev.markets]
        return d

    def series_json(self, s: Series, volume: bool) -> dict[str, Any]:
        d: dict[str, Any] = {
            "ticker": s.ticker,
            "frequency": s.frequency,
            "title": s.title,
            "category": s.category,
            "tags": list(s.tags),
            "settlement_sources": [{"name": s.settlement_source[0], "url": s.settlement_source[1]}],
            "contract_url": f"https://kalshi.com/markets/{s.ticker.lower()}",
            "contract_terms_url": f"https://kalshi.com/regulatory/rulebooks/{s.ticker}.pdf",
            "fee_type": "quadratic",
            "fee_multiplier": 1,
            "additional_prohibitions": [],
        }
        if volume:
            total = sum(
                self.e.books[m.index].volume for m in self.u.markets if m.series_ticker == s.ticker
            )
            d["volume_fp"] = f"{total}.00"
        return d

    @staticmethod
    def trade_json(t: TradeRecord, ticker: str) -> dict[str, Any]:
        side = "yes" if t.taker_yes else "no"
        return {
            "trade_id": t.trade_id,
            "ticker": ticker,
            "count_fp": f"{t.qty}.00",
            "yes_price_dollars": price_str(t.yes_price),
            "no_price_dollars": price_str(PIPS - t.yes_price),
            "taker_side": side,
            "taker_outcome_side": side,
            "taker_book_side": "bid" if t.taker_yes else "ask",
            "created_time": rfc3339_ms(t.ts_ms),
        }

    # -- endpoints ------------------------------------------------------------------------

    def markets(self, request: web.Request) -> web.Response:
        q = request.query
        limit = _int(q, "limit", 100, 1, 1000) or 100
        start = _cursor(q)
        events = _csv(q, "event_ticker")
        if events is not None and len(events) > 10:
            raise BadRequest("event_ticker accepts at most 10 tickers")
        series = q.get("series_ticker") or None
        tickers = _csv(q, "tickers")
        status = q.get("status") or None
        if status is not None and status not in STATUS_FILTER:
            raise BadRequest(f"status must be one of {', '.join(STATUS_FILTER)}")
        statuses = STATUS_FILTER[status] if status else None
        bounds: list[tuple[str, Callable[[Market], int | None], bool]] = [
            ("min_updated_ts", lambda m: m.updated_ms // 1000, True),
            ("min_created_ts", lambda m: m.created_ms // 1000, True),
            ("max_created_ts", lambda m: m.created_ms // 1000, False),
            ("min_close_ts", lambda m: m.close_ts, True),
            ("max_close_ts", lambda m: m.close_ts, False),
            ("min_settled_ts", lambda m: m.settled_ts, True),
            ("max_settled_ts", lambda m: m.settled_ts, False),
        ]
        tests = [
            (f, is_min, v)
            for name, f, is_min in bounds
            if (v := _int(q, name, None, 0)) is not None
        ]
        mve_only = q.get("mve_filter") == "only"

        def match(m: Market) -> bool:
            if mve_only:
                return False  # no multivariate (combo) markets are simulated
            if events is not None and m.event_ticker not in events:
                return False
            if series is not None and m.series_ticker != series:
                return False
            if tickers is not None and m.ticker not in tickers:
                return False
            if statuses is not None and m.status not in statuses:
                return False
            for f, is_min, bound in tests:
                x = f(m)
                if x is None or (x < bound if is_min else x > bound):
                    return False
            return True

        page, cursor = _page(self.u.markets, start, limit, match)
        return _json({"markets": [self.market_json(m) for m in page], "cursor": cursor})

    def market(self, request: web.Request) -> web.Response:
        m = self.u.market(request.match_info["ticker"])
        if m is None:
            return _error(404, "not_found", "market not found")
        return _json({"market": self.market_json(m)})

    def orderbook(self, request: web.Request) -> web.Response:
        m = self.u.market(request.match_info["ticker"])
        if m is None:
            return _error(404, "not_found", "market not found")
        depth = _int(request.query, "depth", 0, 0, 100) or 0
        b = self.e.books[m.index]
        return _json(
            {
                "orderbook_fp": {
                    "yes_dollars": b.levels(True, depth),
                    "no_dollars": b.levels(False, depth),
                }
            }
        )

    def trades(self, request: web.Request) -> web.Response:
        q = request.query
        limit = _int(q, "limit", 100, 1, 1000) or 100
        before = _cursor(q)  # a trade seq: this page starts just below it (newest first)
        ticker = q.get("ticker") or None
        mi = None
        if ticker is not None:
            mi = self.u.by_ticker.get(ticker)
            if mi is None:
                return _json({"trades": [], "cursor": ""})
        min_ms = (_int(q, "min_ts", None, 0) or 0) * 1000
        max_ts = _int(q, "max_ts", None, 0)
        max_ms = None if max_ts is None else max_ts * 1000 + 999
        trades = self.e.trades
        if not trades:
            return _json({"trades": [], "cursor": ""})
        first = trades[0].seq
        i = len(trades) - 1 if before == 0 else min(len(trades) - 1, before - 1 - first)
        out: list[dict[str, Any]] = []
        cursor = ""
        while i >= 0:
            t = trades[i]
            i -= 1
            if t.ts_ms < min_ms:
                break  # newest first: everything further is older still
            if (mi is not None and t.market != mi) or (max_ms is not None and t.ts_ms > max_ms):
                continue
            if len(out) == limit:
                cursor = str(t.seq + 1)
                break
            out.append(self.trade_json(t, self.u.markets[t.market].ticker))
        return _json({"trades": out, "cursor": cursor})

    def events(self, request: web.Request) -> web.Response:
        q = request.query
        limit = _int(q, "limit", 200, 1, 200) or 200
        start = _cursor(q)
        nested = q.get("with_nested_markets", "").lower() == "true"
        status = q.get("status") or None
        if status is not None and status not in ("open", "closed", "settled"):
            raise BadRequest("status must be one of open, closed, settled")
        series = q.get("series_ticker") or None
        min_close = _int(q, "min_close_ts", None, 0)
        evs = list(self.u.events.values())

        def match(ev: Event) -> bool:
            if series is not None and ev.series_ticker != series:
                return False
            if status is not None and self.u.event_status(ev) != status:
                return False
            if min_close is not None:
                closes = [self.u.markets[i].close_ts for i in ev.markets]
                if not closes or max(closes) < min_close:
                    return False
            return True

        page, cursor = _page(evs, start, limit, match)
        return _json({"events": [self.event_json(ev, nested) for ev in page], "cursor": cursor})

    def event(self, request: web.Request) -> web.Response:
        ev = self.u.events.get(request.match_info["event_ticker"])
        if ev is None:
            return _error(404, "not_found", "event not found")
        nested = request.query.get("with_nested_markets", "").lower() == "true"
        markets = [self.market_json(self.u.markets[i]) for i in ev.markets]
        return _json({"event": self.event_json(ev, nested), "markets": markets})

    def series_list(self, request: web.Request) -> web.Response:
        q = request.query
        category = q.get("category") or None
        tags = _csv(q, "tags")
        volume = q.get("include_volume", "").lower() == "true"
        out = [
            self.series_json(s, volume)
            for s in self.u.series.values()
            if (category is None or s.category == category) and (tags is None or tags & set(s.tags))
        ]
        return _json({"series": out})

    def series(self, request: web.Request) -> web.Response:
        s = self.u.series.get(request.match_info["series_ticker"])
        if s is None:
            return _error(404, "not_found", "series not found")
        volume = request.query.get("include_volume", "").lower() == "true"
        return _json({"series": self.series_json(s, volume)})

    def exchange_status(self, request: web.Request) -> web.Response:
        return _json({"exchange_active": True, "trading_active": True})


def _page(
    items: list[T], start: int, limit: int, match: Callable[[T], bool]
) -> tuple[list[T], str]:
    """Up to ``limit`` matches from index ``start``; the cursor points at the next match
    (so the last page says so with "" instead of leaving an empty page to fetch)."""
    page: list[T] = []
    for i in range(start, len(items)):
        if match(items[i]):
            if len(page) == limit:
                return page, str(i)
            page.append(items[i])
    return page, ""
