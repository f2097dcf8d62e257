"""Kalshi REST v2 market data: cursor paging, a token bucket, and 429s that only delay.

Kalshi answers a 429 with no ``Retry-After`` (kalshi-protocol.md 4.5), so requests back off
exponentially with jitter and are retried until they succeed or the client is closed: a
lookup that failed must never make a market disappear (lessons.md).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ssmd.feeds.kalshi.auth import KalshiCredentials
from ssmd.feeds.kalshi.rest_models import (
    Market,
    Series,
    parse_market,
    parse_markets_page,
    parse_series,
)

log = logging.getLogger("ssmd.connector.kalshi.rest")


class RestError(RuntimeError):
    """A request the exchange refused for good (4xx other than 404/429)."""


class TokenBucket:
    """``rate`` requests per second with bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate, 1.0)
        self._tokens = self.burst
        self._at = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:  # FIFO: callers are served in order
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
                self._at = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


class KalshiRest:
    def __init__(
        self,
        base_url: str,
        *,
        rate_per_s: float = 10.0,
        credentials: Callable[[], KalshiCredentials | None] | None = None,
        backoff_base: float = 0.25,
        backoff_cap: float = 30.0,
        timeout: float = 15.0,
        stats: Any = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path
        self.bucket = TokenBucket(rate_per_s)
        self._credentials = credentials
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.stats = stats
        self.requests = 0
        self.throttled = 0

    async def __aenter__(self) -> KalshiRest:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, path: str) -> dict[str, str]:
        if self._credentials is None:
            return {}
        try:
            creds = self._credentials()
        except Exception:
            return {}  # market data GETs need no auth; signing is a courtesy
        return creds.headers("GET", self._base_path + path) if creds is not None else {}

    async def get(self, path: str, params: dict[str, str] | None = None) -> tuple[int, bytes]:
        """GET with retries; returns (status, body) for 200 and 404, raises RestError else."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        attempt = 0
        while True:
            await self.bucket.acquire()
            self.requests += 1
            try:
                async with self._session.get(
                    self.base_url + path, params=params, headers=self._headers(path)
                ) as resp:
                    body = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, body = -1, str(exc).encode()
            if status in (200, 404):
                return status, body
            if status == 429 or status == -1 or status >= 500:
                if status == 429:
                    self.throttled += 1
                if self.stats is not None:
                    self.stats.error("rest_429" if status == 429 else "rest_unavailable")
                delay = min(self._backoff_cap, self._backoff_base * 2**attempt) * (
                    0.5 + random.random() / 2
                )
                attempt = min(attempt + 1, 20)
                if attempt in (1, 5, 10) or attempt % 20 == 0:
                    log.warning(
                        "GET %s: HTTP %s, retrying in %.2fs (attempt %d)",
                        path,
                        status,
                        delay,
                        attempt,
                    )
                await asyncio.sleep(delay)
                continue
            raise RestError(
                f"GET {path} failed: HTTP {status}: {body[:200].decode(errors='replace')}"
            )

    async def markets(self, **params: str) -> AsyncIterator[Market]:
        """Every market matching ``params`` (``status``, ``series_ticker``...), page by page."""
        cursor: str | None = None
        while True:
            q = {**params, "limit": "1000"}
            if cursor:
                q["cursor"] = cursor
            _, body = await self.get("/markets", q)
            page, cursor = parse_markets_page(body)
            for market in page:
                yield market
            if not cursor:
                return

    async def market(self, ticker: str) -> Market | None:
        status, body = await self.get(f"/markets/{ticker}")
        return parse_market(body) if status == 200 else None

    async def series(self, ticker: str) -> Series | None:
        status, body = await self.get(f"/series/{ticker}")
        return parse_series(body) if status == 200 else None
