"""The connector end to end: the simulator as the exchange, a real nats-server, real sockets."""

from __future__ import annotations

from pathlib import Path

from nats.aio.client import Client
from nats.js import JetStreamContext

from ssmd.sim.kalshi import SimConfig
from ssmd.transport.server import EmbeddedNats

from .connector_support import frames_by_conn, quiesce, rig, sim_logs, stream_msgs


async def test_every_frame_exactly_once_in_order(
    tmp_path: Path, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext
) -> None:
    cfg = SimConfig(
        markets=12, rate=3000, record_frames=True, lifecycle_interval_s=0, data_dir=tmp_path / "sim"
    )
    async with rig(tmp_path, nats_server.url, sim=cfg) as (sim, c):
        await until_frames(c, 1500)
        await quiesce(sim, c, nc)
        msgs = await stream_msgs(js, "TEST_KALSHI")
        got = frames_by_conn(msgs)
        logs = sim_logs(sim)
        assert len(logs) == len(got) == 1
        (sent,) = logs.values()
        (stored,) = got.values()
        assert stored == sent  # byte-identical, exactly once, in order
        ids = [m.headers["Nats-Msg-Id"] for m in msgs]
        assert len(ids) == len(set(ids))
        assert all(int(m.headers["Ssmd-Recv-Ns"]) > 0 for m in msgs)
        assert c.stats.gaps == {}


async def until_frames(c, n: int) -> None:  # type: ignore[no-untyped-def]
    from .connector_support import until

    await until(lambda: sum(s.frames for s in c.shards) >= n, 15, f"{n} frames")
