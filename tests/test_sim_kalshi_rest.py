"""Kalshi simulator REST v2 over real HTTP: paging, filters, shapes, orderbook, trades."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from ssmd.sim.kalshi import KalshiSim

from .sim_kalshi_helpers import config

DOLLARS = re.compile(r"^\d\.\d{4}$")
FP = re.compile(r"^\d+\.\d{2}$")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def get(s: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Any]:
    async with s.get(url, params={k: str(v) for k, v in params.items()}) as r:
        return r.status, await r.json()


async def page_all(
    s: aiohttp.ClientSession, url: str, key: str, **params: Any
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(1000):
        status, body = await get(s, url, **params, **({"cursor": cursor} if cursor else {}))
        assert status == 200, body
        out += body[key]
        cursor = body["cursor"]
        assert isinstance(cursor, str)
        if cursor == "":
            return out
    raise AssertionError("paging never ended")


async def test_markets_paging_returns_every_market_once(http: aiohttp.ClientSession) -> None:
    async with KalshiSim(config(markets=45)) as sim:
        got = await page_all(http, f"{sim.rest_url}/markets", "markets", limit=7)
        assert [m["ticker"] for m in got] == [m.ticker for m in sim.markets]
        _status, body = await get(http, f"{sim.rest_url}/markets")
        assert len(body["markets"]) == 45 and body["cursor"] == ""  # default limit 100
        for bad in (
            {"limit": 1001},
            {"limit": 0},
            {"limit": "x"},
            {"cursor": "zz"},
            {"status": "live"},
        ):
            assert (await get(http, f"{sim.rest_url}/markets", **bad))[0] == 400


async def test_markets_filters(http: aiohttp.ClientSession) -> None:
    async with KalshiSim(config(markets=60)) as sim:
        url = f"{sim.rest_url}/markets"
        first = sim.markets[0]
        by_event = await page_all(http, url, "markets", event_ticker=first.event_ticker)
        assert {m["event_ticker"] for m in by_event} == {first.event_ticker}
        assert len(by_event) == sum(m.event_ticker == first.event_ticker for m in sim.markets)
        by_series = await page_all(http, url, "markets", series_ticker="KXBTCD", limit=3)
        assert by_series and {m["ticker"].split("-")[0] for m in by_series} == {"KXBTCD"}
        picks = [sim.markets[3].ticker, sim.markets[5].ticker]
        assert [
            m["ticker"] for m in await page_all(http, url, "markets", tickers=",".join(picks))
        ] == picks
        open_ = await page_all(http, url, "markets", status="open")
        assert open_ and {m["status"] for m in open_} == {"active"}
        settled = await page_all(http, url, "markets", status="settled")
        assert {m["status"] for m in settled} <= {"finalized"}
        assert (
            len(open_) + len(settled) + len(await page_all(http, url, "markets", status="unopened"))
            == 60
        )
        assert await page_all(http, url, "markets", min_updated_ts=10**10) == []


async def test_market_shape_and_dotted_ticker(http: aiohttp.ClientSession) -> None:
    async with KalshiSim(config()) as sim:
        dotted = next(m.ticker for m in sim.markets if "." in m.ticker)
        status, body = await get(http, f"{sim.rest_url}/markets/{dotted}")
        assert status == 200
        m = body["market"]
        assert m["ticker"] == dotted and m["market_type"] == "binary"
        for k, v in m.items():
            if k.endswith("_dollars"):
                assert DOLLARS.match(v), (k, v)
            if k.endswith("_fp"):
                assert FP.match(v), (k, v)
        book = sim.true_book(dotted)
        assert Decimal(m["yes_bid_dollars"]) == (book.best_yes_bid or 0)
        assert Decimal(m["yes_ask_dollars"]) == (book.yes_ask or 1)
        status, body = await get(http, f"{sim.rest_url}/markets/NOPE-1")
        assert status == 404 and set(body) == {"code", "message", "details"}


async def test_orderbook_fp_matches_true_book(http: aiohttp.ClientSession) -> None:
    async with KalshiSim(config()) as sim:
        await sim.step(500)
        t = sim.markets[0].ticker
        status, body = await get(http, f"{sim.rest_url}/markets/{t}/orderbook")
        assert status == 200 and list(body) == ["orderbook_fp"]
        ob = body["orderbook_fp"]
        book = sim.true_book(t)
        assert [tuple(map(Decimal, lv)) for lv in ob["yes_dollars"]] == list(book.yes)
        assert [tuple(map(Decimal, lv)) for lv in ob["no_dollars"]] == list(book.no)
        status, body = await get(http, f"{sim.rest_url}/markets/{t}/orderbook", depth=1)
        assert [tuple(map(Decimal, lv)) for lv in body["orderbook_fp"]["yes_dollars"]] == list(
            book.yes[-1:]
        )
        assert (await get(http, f"{sim.rest_url}/markets/{t}/orderbook", depth=101))[0] == 400


async def test_trades_paging_newest_first_every_trade_once(http: aiohttp.ClientSession) -> None:
    async with KalshiSim(config(markets=10)) as sim:
        await sim.step(3000)
        url = f"{sim.rest_url}/markets/trades"
        trades = await page_all(http, url, "trades", limit=50)
        assert len(trades) == sim.stats()["trades"] > 100
        assert len({t["trade_id"] for t in trades}) == len(trades)
        times = [t["created_time"] for t in trades]
        assert times == sorted(times, reverse=True)
        t0 = trades[0]
        assert list(t0) == [
            "trade_id",
            "ticker",
            "count_fp",
            "yes_price_dollars",
            "no_price_dollars",
            "taker_side",
            "taker_outcome_side",
            "taker_book_side",
            "created_time",
        ]
        one = t0["ticker"]
        only = await page_all(http, url, "trades", ticker=one, limit=5)
        assert only and {t["ticker"] for t in only} == {one}
        assert len(only) == sum(t["ticker"] == one for t in trades)
        mid_s = int(datetime.fromisoformat(trades[len(trades) // 2]["created_time"]).timestamp())
        recent = await page_all(http, url, "trades", min_ts=mid_s, max_ts=mid_s)
        assert recent
        assert recent == [
            t for t in trades if int(datetime.fromisoformat(t["created_time"]).timestamp()) == mid_s
        ]
        assert await page_all(http, url, "trades", max_ts=1) == []
        assert await page_all(http, url, "trades", ticker="NOPE-1") == []


async def test_events_and_series(http: aiohttp.ClientSession) -> None:
    async with KalshiSim(config(markets=60)) as sim:
        url = f"{sim.rest_url}/events"
        events = await page_all(http, url, "events", limit=4)
        tickers_ = [e["event_ticker"] for e in events]
        assert len(tickers_) == len(set(tickers_)) == len({m.event_ticker for m in sim.markets})
        assert (await get(http, url, limit=201))[0] == 400
        status, body = await get(http, url, with_nested_markets="true", limit=1)
        assert body["events"][0]["markets"] and "markets" not in events[0]
        ev = events[0]
        status, body = await get(http, f"{url}/{ev['event_ticker']}")
        assert status == 200 and body["event"]["event_ticker"] == ev["event_ticker"]
        assert {m["event_ticker"] for m in body["markets"]} == {ev["event_ticker"]}
        assert (await get(http, f"{url}/NOPE"))[0] == 404

        status, body = await get(http, f"{sim.rest_url}/series")
        series = {s["ticker"]: s for s in body["series"]}
        assert set(series) == {m.series_ticker for m in sim.markets}
        status, body = await get(http, f"{sim.rest_url}/series/KXBTCD", include_volume="true")
        assert (
            status == 200
            and body["series"]["ticker"] == "KXBTCD"
            and FP.match(body["series"]["volume_fp"])
        )
        assert (await get(http, f"{sim.rest_url}/series/NOPE"))[0] == 404
