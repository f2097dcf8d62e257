"""nats-server killed and restarted mid-stream (same data dir, same port): nothing lost or
duplicated; the connector spills to disk meanwhile and replays in order."""

from __future__ import annotations

from pathlib import Path

from ssmd.sim.kalshi import SimConfig
from ssmd.transport.connect import connect
from ssmd.transport.server import EmbeddedNats

from .connector_support import (
    connector_env,
    frames_by_conn,
    quiesce,
    rig,
    sim_logs,
    stream_msgs,
    until,
)


async def test_nats_killed_and_restarted_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    srv = EmbeddedNats(tmp_path / "nats")
    await srv.start()
    port = srv.actual_port
    assert port is not None
    cfg = SimConfig(
        markets=10, rate=2000, record_frames=True, lifecycle_interval_s=0, data_dir=tmp_path / "sim"
    )
    env = connector_env(queueSize=200, maxInFlight=64)
    try:
        async with rig(tmp_path, srv.url, sim=cfg, env=env) as (sim, c):
            assert c.publisher is not None
            pub = c.publisher
            await until(lambda: pub.stats.acked > 500, 10, "frames stored")
            await srv.kill()
            await until(lambda: pub.stats.spilled > 500, 10, "frames spilled while NATS is down")
            srv = EmbeddedNats(tmp_path / "nats", port=port)
            await srv.start()
            await until(lambda: pub.connected and pub.spill_depth == 0, 20, "the spill replayed")
            await quiesce(sim, c, None)  # type: ignore[arg-type]
            nc = await connect(srv.url)
            try:
                msgs = await stream_msgs(nc.jetstream(), "TEST_KALSHI")
            finally:
                await nc.close()
            (sent,) = sim_logs(sim).values()
            (stored,) = frames_by_conn(msgs).values()
            assert len(stored) == len(sent)
            assert stored == sent  # none lost, none duplicated, in order
            assert c.stats.gaps == {}
            assert pub.stats.failures >= 1 and pub.stats.spilled > 0
    finally:
        await srv.stop()
