"""One sync pass: Kalshi REST (paged, rate-limited, 429-tolerant) → secmaster KV + change events."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import orjson
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from ssmd import subjects
from ssmd.feeds.kalshi.rest_models import (
    Event,
    Market,
    Series,
    parse_events_page,
    parse_markets_page,
    parse_series_list,
)
from ssmd.secmaster.store import (
    WRITTEN,
    MarketStore,
    diff,
    event_record,
    kv_key,
    market_record,
    same,
    series_record,
)

log = logging.getLogger("ssmd.secmaster")
_T = TypeVar("_T")


class RestUnavailable(ConnectionError):
    """The exchange REST API could not be read (after retries). Names the URL path only."""


class TokenBucket:
    """``rate`` requests per second with a burst of ``burst`` (Kalshi: ~20 GET/s on Basic)."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._t = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._t) * self.rate)
                self._t = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


class KalshiRest:
    """Public market-data GETs. A 429 (no Retry-After on Kalshi) is retried with
    exponential backoff and jitter; a market is never dropped because a call failed."""

    def __init__(
        self,
        base_url: str,
        *,
        rate_per_s: float = 10.0,
        retries: int = 6,
        backoff_s: float = 0.2,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.bucket = TokenBucket(rate_per_s)
        self.retries, self.backoff_s = retries, backoff_s
        self._session = session
        self._own = session is None
        self.requests = 0
        self.throttled = 0

    async def __aenter__(self) -> KalshiRest:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own and self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, path: str, params: dict[str, Any] | None = None) -> bytes:
        if self._session is None:
            await self.__aenter__()
        assert self._session is not None
        url = f"{self.base}{path}"
        last = ""
        for attempt in range(self.retries + 1):
            await self.bucket.take()
            self.requests += 1
            try:
                async with self._session.get(url, params=params) as resp:
                    body = await resp.read()
                    if resp.status == 200:
                        return body
                    last = f"HTTP {resp.status}"
                    if resp.status == 429:
                        self.throttled += 1
                    elif resp.status < 500:
                        raise RestUnavailable(f"GET {path}: {last}: {body[:200]!r}")
            except aiohttp.ClientError as exc:
                last = f"{exc.__class__.__name__}: {exc}"
            await asyncio.sleep(self.backoff_s * (2**attempt) * (0.5 + random.random()))
        raise RestUnavailable(f"GET {path} failed after {self.retries + 1} attempts ({last})")

    async def pages(
        self,
        path: str,
        parse: Callable[[bytes], tuple[list[_T], str | None]],
        params: dict[str, Any] | None = None,
        *,
        max_pages: int = 10_000,
    ) -> list[_T]:
        out: list[_T] = []
        q = dict(params or {})
        for _ in range(max_pages):
            items, cursor = parse(await self.get(path, q))
            out.extend(items)
            if not cursor:
                break
            q["cursor"] = cursor
        return out

    async def series(self) -> list[Series]:
        return await self.pages("/series", parse_series_list)

    async def events(self) -> list[Event]:
        return await self.pages("/events", parse_events_page, {"limit": 200})

    async def markets(self, **filters: Any) -> list[Market]:
        return await self.pages("/markets", parse_markets_page, {"limit": 1000, **filters})


@dataclass
class SyncResult:
    series: int = 0
    events: int = 0
    markets: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_tickers: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "events": self.events,
            "markets": self.markets,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "seconds": round(self.seconds, 3),
        }


async def sync_once(
    js: JetStreamContext,
    kv: KeyValue,
    store: MarketStore,
    rest: KalshiRest,
    *,
    env: str,
    feed: str,
    progress: Callable[[str, int], None] | None = None,
) -> SyncResult:
    """Read series, events and markets; write what changed; publish one change event per
    changed market on ``{env}.{feed}.meta.market.{ticker}``."""
    t0 = time.monotonic()
    res = SyncResult()
    series_list = await rest.series()
    res.series = len(series_list)
    if progress:
        progress("series", len(series_list))
    events = await rest.events()
    res.events = len(events)
    if progress:
        progress("events", len(events))
    markets = await rest.markets()
    res.markets = len(markets)
    if progress:
        progress("markets", len(markets))
    series_by = {s.ticker: s for s in series_list}
    events_by = {e.event_ticker: e for e in events}

    for s in series_list:
        rec = series_record(s)
        if not same(store.series.get(s.ticker), rec):
            rec[WRITTEN] = int(time.time() * 1000)
            await kv.put(kv_key("series", s.ticker), orjson.dumps(rec))
            store.series[s.ticker] = rec
    for e in events:
        rec = event_record(e)
        if not same(store.events.get(e.event_ticker), rec):
            rec[WRITTEN] = int(time.time() * 1000)
            await kv.put(kv_key("event", e.event_ticker), orjson.dumps(rec))
            store.events[e.event_ticker] = rec
    for m in markets:
        ev = events_by.get(m.event_ticker)
        se = series_by.get(ev.series_ticker if ev and ev.series_ticker else m.series_ticker)
        rec = market_record(m, ev, se)
        old = store.markets.get(m.ticker)
        if same(old, rec):
            res.unchanged += 1
            continue
        changes = diff(old, rec)
        rec[WRITTEN] = int(time.time() * 1000)
        revision = await kv.put(kv_key("market", m.ticker), orjson.dumps(rec))
        store.markets[m.ticker] = rec
        if old is None:
            res.created += 1
        else:
            res.updated += 1
        res.changed_tickers.append(m.ticker)
        event_doc = {
            "ticker": m.ticker,
            "kind": "created" if old is None else "updated",
            "revision": revision,
            "time_ms": int(time.time() * 1000),
            "changes": changes if old is not None else {},
            "record": rec,
        }
        await js.publish(subjects.meta_market_subject(env, feed, m.ticker), orjson.dumps(event_doc))
    res.seconds = time.monotonic() - t0
    return res
