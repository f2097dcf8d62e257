"""Market selectors resolved through the simulator's REST API (no NATS needed)."""

from __future__ import annotations

from pathlib import Path

from ssmd.feeds.kalshi.rest_client import KalshiRest, TokenBucket
from ssmd.feeds.kalshi.universe import Universe
from ssmd.sim.kalshi import KalshiSim, SimConfig
from ssmd.spec.environment import MarketSelector

CATEGORY = {
    "KXBTCD": "Crypto",
    "KXETHD": "Crypto",
    "INXD": "Financials",
    "FED": "Economics",
    "CPI": "Economics",
}


async def test_selectors_are_ored_within_and_anded_across_fields(tmp_path: Path) -> None:
    async with KalshiSim(
        SimConfig(markets=300, rate=10, lifecycle_interval_s=0, data_dir=tmp_path)
    ) as sim:
        open_ = [m for m in sim.markets if m.status == "active"]

        async def resolve(**sel: object) -> set[str]:
            async with KalshiRest(sim.rest_url, rate_per_s=1000) as rest:
                return set(await Universe(MarketSelector(**sel), rest).resolve())  # type: ignore[arg-type]

        assert await resolve() == {m.ticker for m in open_}
        assert await resolve(series=["KXBTCD", "FED"]) == {
            m.ticker for m in open_ if m.series_ticker in ("KXBTCD", "FED")
        }
        events = sorted({m.event_ticker for m in open_})[:3]
        assert await resolve(events=events) == {m.ticker for m in open_ if m.event_ticker in events}
        crypto = await resolve(categories=["crypto"])
        assert crypto and crypto == {
            m.ticker for m in open_ if CATEGORY.get(m.series_ticker) == "Crypto"
        }
        # AND across fields: a series outside the category matches nothing.
        assert await resolve(series=["FED"], categories=["Crypto"]) == set()
        some = sorted(m.ticker for m in open_)[:5]
        assert await resolve(tickers=[*some, "NO-SUCH-MARKET"]) == set(some)
        assert len(await resolve(max_markets=7)) == 7
        settled = {m.ticker for m in sim.markets if m.status == "finalized"}
        assert await resolve(status=["settled"]) == settled


async def test_token_bucket_paces_requests() -> None:
    bucket = TokenBucket(rate=1000.0, burst=5)
    for _ in range(5):
        await bucket.acquire()  # the burst is free
    assert bucket._tokens < 1
    await bucket.acquire()  # then one per 1/rate seconds
