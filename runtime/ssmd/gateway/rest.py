"""REST: ``/v1/markets...``, ``/v1/health``, ``/v1/meta/...`` and client admin.

Shapes are meant for programs and AI agents alike: numbers in dollars (YES perspective),
explicit data-quality fields, ``_links`` to related resources and ``_hints`` in words."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from ssmd.books.builder import BookState
from ssmd.gateway.clients import POLICIES
from ssmd.gateway.feed import TRADES_KEPT, levels_json, num
from ssmd.gateway.stream import BadRequest, parse_mode

if TYPE_CHECKING:
    from ssmd.gateway.service import Gateway


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        content_type="application/json",
    )


def _err(status: int, code: str, message: str) -> web.Response:
    return _json({"error": code, "message": message}, status)


def _int(q: Any, name: str, default: int, lo: int, hi: int) -> int:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not lo <= v <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return v


class _NoClient(LookupError):
    pass


class Rest:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def routes(self) -> list[web.RouteDef]:
        w = self._wrap
        return [
            web.get("/v1/markets", w(self.markets)),
            web.get("/v1/markets/{ticker}", w(self.market)),
            web.get("/v1/markets/{ticker}/trades", w(self.trades)),
            web.get("/v1/markets/{ticker}/orderbook", w(self.orderbook)),
            web.get("/v1/health", self.health),  # open: liveness probes carry no key
            web.get("/v1/meta/feeds", w(self.feeds)),
            web.get("/v1/meta/inventory", w(self.inventory)),
            web.get("/v1/meta/gaps/{feed}", w(self.gaps)),
            web.get("/v1/admin/clients", w(self.clients)),
            web.get("/v1/admin/clients/{id}", w(self.client)),
            web.post("/v1/admin/clients/{id}/disconnect", w(self.disconnect)),
            web.post("/v1/admin/clients/{id}/mode", w(self.set_mode)),
        ]

    def _wrap(self, fn: Any) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            if self.gw.auth.check(request) is None:
                return _err(401, "unauthorized", "a valid API key is required")
            try:
                result: web.StreamResponse = await fn(request)
                return result
            except BadRequest as exc:
                return _err(400, "bad_request", str(exc))
            except _NoClient:
                return _err(404, "not_found", "no such client (see /v1/admin/clients)")

        return handler

    # -- markets ------------------------------------------------------------------------------

    def _summary(self, rec: dict[str, Any]) -> dict[str, Any]:
        t = rec["ticker"]
        e = self.gw.feed.builder.books.get(t)
        live = e is not None and e.state is BookState.LIVE
        return {
            "ticker": t,
            "title": rec.get("title"),
            "yes_sub_title": rec.get("yes_sub_title"),
            "status": rec.get("status"),
            "event_ticker": rec.get("event_ticker"),
            "series_ticker": rec.get("series_ticker"),
            "category": rec.get("category"),
            "close_time": rec.get("close_time"),
            "best_bid": num(e.book.best_yes_bid) if live and e else None,
            "best_ask": num(e.book.best_yes_ask) if live and e else None,
            "book_state": e.state.value if e else "none",
        }

    async def markets(self, request: web.Request) -> web.Response:
        q = request.query
        limit = _int(q, "limit", 1000, 1, 100_000)
        recs = self.gw.store.query(
            status=q.get("status") or None,
            series=q.get("series") or None,
            category=q.get("category") or None,
            event=q.get("event") or None,
        )
        return _json(
            {
                "markets": [self._summary(r) for r in recs[:limit]],
                "count": min(len(recs), limit),
                "total": len(recs),
            }
        )

    async def market(self, request: web.Request) -> web.Response:
        t = request.match_info["ticker"]
        rec = self.gw.store.markets.get(t)
        e = self.gw.feed.builder.books.get(t)
        md = self.gw.feed.markets.get(t)
        if rec is None and e is None:
            return _err(404, "not_found", f"no market {t[:100]!r} (see /v1/markets)")
        rec = rec or {"ticker": t}
        b = e.book if e is not None else None
        live = e is not None and e.state is BookState.LIVE
        bid = b.best_yes_bid if b is not None and live else None
        ask = b.best_yes_ask if b is not None and live else None
        last = md.ticker_msg.get("last_price") if md and md.ticker_msg else None
        if last is None and md and md.trades:
            last = md.trades[-1]["price"]
        gaps = [g for g in self.gw.feed.gaps if t in (g.get("markets") or [])]
        base = f"/v1/markets/{t}"
        return _json(
            {
                "ticker": t,
                "title": rec.get("title"),
                "market_title": rec.get("market_title"),
                "yes_sub_title": rec.get("yes_sub_title"),
                "no_sub_title": rec.get("no_sub_title"),
                "status": rec.get("status"),
                "event_ticker": rec.get("event_ticker"),
                "series_ticker": rec.get("series_ticker"),
                "category": rec.get("category"),
                "result": rec.get("result"),
                "price": {
                    "last": last,
                    "bid": num(bid),
                    "ask": num(ask),
                    "mid": num((bid + ask) / 2) if bid is not None and ask is not None else None,
                    "spread": num(ask - bid) if bid is not None and ask is not None else None,
                    "units": "USD per YES contract (pays $1 if YES)",
                },
                "orderbook": {
                    "state": e.state.value if e else "none",
                    "best_bid": num(bid),
                    "best_ask": num(ask),
                    "bid_levels": len(b.yes) if b is not None else 0,
                    "ask_levels": len(b.no) if b is not None else 0,
                    "bid_size_total": num(sum(b.yes.values(), Decimal(0))) if b is not None else 0,
                    "ask_size_total": num(sum(b.no.values(), Decimal(0))) if b is not None else 0,
                    "top": {
                        "bids": levels_json(b.bids(5)) if b is not None else [],
                        "asks": levels_json(b.asks(5)) if b is not None else [],
                    },
                },
                "contract": {
                    "open_time": rec.get("open_time"),
                    "close_time": rec.get("close_time"),
                    "expected_expiration_time": rec.get("expected_expiration_time"),
                    "latest_expiration_time": rec.get("latest_expiration_time"),
                    "can_close_early": rec.get("can_close_early"),
                    "settlement_value": rec.get("settlement_value"),
                },
                "data_quality": {
                    "source": self.gw.ctx.source,
                    "book_state": e.state.value if e else "none",
                    "stale_reason": e.stale_reason if e else None,
                    "book_seq": e.stream_seq if e else None,
                    "last_update_ms": e.ts_ms if e else None,
                    "recent_gaps": len(gaps),
                    "in_secmaster": t in self.gw.store.markets,
                },
                "_links": {
                    "self": base,
                    "orderbook": f"{base}/orderbook?depth=10",
                    "trades": f"{base}/trades?limit=100",
                    "stream": f"/v1/stream?symbols={t}",
                    "markets_in_event": f"/v1/markets?event={rec.get('event_ticker') or ''}",
                },
                "_hints": _hints(e.state.value if e else "none", self.gw.ctx.source, bid, ask),
            }
        )

    async def trades(self, request: web.Request) -> web.Response:
        t = request.match_info["ticker"]
        q = request.query
        limit = _int(q, "limit", 100, 1, TRADES_KEPT)
        since = _int(q, "since", 0, 0, 1 << 62)
        md = self.gw.feed.markets.get(t)
        if md is None and t not in self.gw.store.markets:
            return _err(404, "not_found", f"no market {t[:100]!r}")
        rows = list(md.trades) if md else []
        if since:
            rows = [r for r in rows if (r.get("ts_ms") or 0) >= since]
        rows = rows[-limit:][::-1]  # newest first
        return _json({"ticker": t, "trades": rows, "count": len(rows)})

    async def orderbook(self, request: web.Request) -> web.Response:
        t = request.match_info["ticker"]
        depth = _int(request.query, "depth", 10, 0, 1000)
        e = self.gw.feed.builder.books.get(t)
        if e is None or e.state is BookState.PENDING:
            return _err(404, "not_found", f"no order book for {t[:100]!r} yet")
        return _json(self.gw.feed.book_dict(e, depth) | {"depth": depth})

    # -- health and meta ----------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return _json(self.gw.health())

    async def feeds(self, request: web.Request) -> web.Response:
        f = self.gw.feed
        spec = self.gw.ctx.env.spec
        states = [e.state for e in f.builder.books.values()]
        return _json(
            {
                "feeds": [
                    {
                        "name": self.gw.ctx.feed,
                        "venue": spec.feed.venue,
                        "source": self.gw.ctx.source,
                        "stream": f"{self.gw.ctx.name.upper()}_{self.gw.ctx.feed.upper()}",
                        "channels": list(spec.channels),
                        "markets_with_books": len(states),
                        "books_live": states.count(BookState.LIVE),
                        "books_stale": states.count(BookState.STALE),
                        "last_seq": f.last_seq,
                        "frames": f.frames,
                        "secmaster_markets": len(self.gw.store.markets),
                    }
                ]
            }
        )

    async def inventory(self, request: web.Request) -> web.Response:
        try:
            rows = await archive_inventory(self.gw)
        except Exception as exc:  # storage unreachable: say so, do not fail the gateway
            return _err(
                503, "storage_unavailable", f"archive not readable: {exc.__class__.__name__}"
            )
        return _json({"source": self.gw.ctx.source, "inventory": rows})

    async def gaps(self, request: web.Request) -> web.Response:
        feed = request.match_info["feed"]
        if feed != self.gw.ctx.feed:
            return _err(
                404,
                "not_found",
                f"unknown feed {feed[:50]!r} (this gateway serves {self.gw.ctx.feed!r})",
            )
        limit = _int(request.query, "limit", 100, 1, 1000)
        rows = list(self.gw.feed.gaps)[-limit:][::-1]
        return _json({"feed": feed, "gaps": rows, "count": len(rows)})

    # -- admin --------------------------------------------------------------------------------

    async def clients(self, request: web.Request) -> web.Response:
        return _json({"clients": [c.info() for c in self.gw.hub.clients.values()]})

    def _client(self, request: web.Request) -> Any:
        c = self.gw.hub.clients.get(request.match_info["id"])
        if c is None:
            raise _NoClient
        return c

    async def client(self, request: web.Request) -> web.Response:
        return _json(self._client(request).info())

    async def disconnect(self, request: web.Request) -> web.Response:
        c = self._client(request)
        c.disconnect("disconnected by an operator")
        return _json({"id": c.id, "state": c.state.value})

    async def set_mode(self, request: web.Request) -> web.Response:
        c = self._client(request)
        try:
            body = await request.json(loads=orjson.loads)
        except Exception:
            raise BadRequest('body must be JSON: {"mode": ..., "interval_ms": ...}') from None
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        mode, interval = parse_mode(body.get("mode"), body.get("interval_ms"))
        policy = body.get("policy")
        if policy is not None:
            if policy not in POLICIES:
                raise BadRequest(f"policy must be one of {', '.join(POLICIES)}")
            c.policy = policy
        self.gw.hub.set_mode(c, mode, interval)
        return _json(c.info())


def _hints(state: str, source: str, bid: Decimal | None, ask: Decimal | None) -> list[str]:
    h = ["Prices are dollars per YES contract; a contract pays $1 if the market resolves YES."]
    if bid is not None and ask is not None:
        h.append(f"Implied probability of YES is about {float((bid + ask) / 2):.0%} (mid).")
    if state == "stale":
        h.append(
            "The order book is stale (a gap was detected); wait for a resync before trading on it."
        )
    elif state == "none":
        h.append("No order book yet: the market may not be subscribed or has not sent a snapshot.")
    if source == "simulator":
        h.append("This data comes from the built-in simulator, not a real exchange.")
    h.append("Subscribe to _links.stream over WebSocket for live updates.")
    return h


async def archive_inventory(gw: Gateway) -> list[dict[str, Any]]:
    """Per-day archive summary from the archiver's manifests (local disk or S3), the same
    rows as ``ssmd data inventory``."""
    from ssmd.archiver.storage import store_for
    from ssmd.data.quality import manifest_quality

    store = store_for(gw.ctx.env)
    feed = gw.ctx.feed
    out = []
    try:
        for date in await store.list_dates(feed):
            m = await store.read_manifest(feed, date)
            if m is None:
                continue
            out.append(
                {
                    "feed": feed,
                    "date": date,
                    "files": len(m.files),
                    "records": m.records,
                    "bytes": m.bytes,
                    "has_gaps": m.has_gaps,
                    "gaps": sum(len(v) for v in m.gaps.values()),
                    "quality": manifest_quality(m).score,
                    "source": m.source,
                }
            )
    finally:
        await store.close()
    return out


def now_ms() -> int:
    return int(time.time() * 1000)
