"""Market universe: REST selectors through 429s, sharding, markets opening and settling."""

from __future__ import annotations

from pathlib import Path

import orjson
from nats.aio.client import Client
from nats.js import JetStreamContext

from ssmd.sim.kalshi import Fault, FaultKind, SimConfig
from ssmd.transport.server import EmbeddedNats

from .connector_support import connector_env, rig, stream_msgs, until


def _active(sim) -> set[str]:  # type: ignore[no-untyped-def]
    return {m.ticker for m in sim.markets if m.status == "active"}


async def test_429_storm_delays_but_loses_no_market(
    tmp_path: Path, nats_server: EmbeddedNats
) -> None:
    cfg = SimConfig(
        markets=300,
        rate=50,
        lifecycle_interval_s=0,
        data_dir=tmp_path / "sim",
        faults=[Fault(FaultKind.REST_429, count=20)],
    )
    env = connector_env(maxMarketsPerConnection=100, restRatePerS=1000)
    async with rig(tmp_path, nats_server.url, sim=cfg, env=env) as (sim, c):
        assert c.rest is not None and c.rest.throttled == 20
        assert c.markets == _active(sim)
        assert len(c.shards) == -(-len(c.markets) // 100)


async def test_3000_markets_on_15_connections_each_on_one(
    tmp_path: Path, nats_server: EmbeddedNats
) -> None:
    # ~92% of simulated markets are open: 3,300 give more than 3,000; maxMarkets caps at 3,000.
    cfg = SimConfig(markets=3300, rate=100, lifecycle_interval_s=0, data_dir=tmp_path / "sim")
    env = connector_env(
        markets={"status": ["open"], "maxMarkets": 3000},
        maxMarketsPerConnection=200,
        restRatePerS=1000,
    )
    async with rig(tmp_path, nats_server.url, sim=cfg, env=env) as (sim, c):
        active = c.markets
        assert len(active) == 3000 and active <= _active(sim)
        n_shards = 15
        assert len(c.shards) == n_shards
        PER_CONN = 200

        def subscribed() -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for conn in sim.connections():
                for sub in conn["subscriptions"]:
                    if sub["channel"] == "orderbook_delta":
                        for t in sub["markets"] or []:
                            out.setdefault(t, []).append(conn["conn"])
            return out

        await until(lambda: len(subscribed()) == len(active), 20, "every market subscribed")
        subs = subscribed()
        assert all(len(v) == 1 for v in subs.values())  # each market on exactly one connection
        per_conn: dict[str, int] = {}
        for v in subs.values():
            per_conn[v[0]] = per_conn.get(v[0], 0) + 1
        assert len(per_conn) == n_shards and max(per_conn.values()) == PER_CONN
        lifecycle = [
            conn
            for conn in sim.connections()
            for s in conn["subscriptions"]
            if s["channel"] == "market_lifecycle_v2"
        ]
        assert len(lifecycle) == 1  # lifecycle is unfiltered: one connection carries it
        shards = c.snapshot()["shards"]
        assert sum(shards.values()) == len(active) and len(shards) == n_shards


async def test_markets_opening_and_settling_are_added_and_retired(
    tmp_path: Path, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext
) -> None:
    cfg = SimConfig(markets=20, rate=400, lifecycle_interval_s=0.3, data_dir=tmp_path / "sim")
    async with rig(tmp_path, nats_server.url, sim=cfg) as (sim, c):
        initial = set(c.markets)
        await until(lambda: len(c.markets - initial) >= 2, 20, "two markets opened and added")
        await until(lambda: len(initial - c.markets) >= 1, 20, "a settled market retired")
        sim.pause()
        await sim.drain()
        # Every open market is captured (new ones included) and no settled one is left.
        await until(lambda: _active(sim) <= c.markets, 10, "the universe to follow")
        assert not c.markets & _settled(sim)
        assert c.markets - initial and initial - c.markets

        def sim_markets() -> set[str]:
            (conn,) = sim.connections()
            (book,) = [s for s in conn["subscriptions"] if s["channel"] == "orderbook_delta"]
            return set(book["markets"])

        await until(lambda: sim_markets() == c.markets, 10, "subscriptions to match")
        # Other markets were never disturbed: one orderbook subscription all along.
        msgs = await stream_msgs(js, "TEST_KALSHI")
        subscribed = [orjson.loads(m.data) for m in msgs if b'"subscribed"' in m.data]
        assert len([f for f in subscribed if f["msg"]["channel"] == "orderbook_delta"]) == 1


def _settled(sim) -> set[str]:  # type: ignore[no-untyped-def]
    return {m.ticker for m in sim.markets if m.status == "finalized"}
