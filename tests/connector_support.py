"""Shared helpers for the connector tests: a simulator + real nats-server + Connector rig."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from nats.aio.client import Client
from nats.js import JetStreamContext

from ssmd import subjects
from ssmd.connector.service import Connector
from ssmd.runtime import RuntimeContext
from ssmd.sim.kalshi import KalshiSim, SimConfig
from ssmd.spec import Environment

from .support import make_environment, until


@dataclass
class StreamMsg:
    seq: int
    subject: str
    data: bytes
    headers: dict[str, str]


async def stream_msgs(
    js: JetStreamContext, stream: str, subject: str | None = None
) -> list[StreamMsg]:
    info = await js.stream_info(stream)
    out: list[StreamMsg] = []
    if info.state.messages == 0:
        return out
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            m = await js.get_msg(stream, seq)
        except Exception:
            continue
        if subject is None or m.subject == subject:
            out.append(StreamMsg(seq, m.subject or "", m.data or b"", dict(m.headers or {})))
    return out


async def gap_records(js: JetStreamContext, env: str = "test") -> list[dict[str, Any]]:
    msgs = await stream_msgs(
        js, subjects.stream_name(env, "kalshi"), subjects.gap_subject(env, "kalshi")
    )
    return [orjson.loads(m.data) for m in msgs]


def connector_env(markets: dict[str, Any] | None = None, **connector: Any) -> Environment:
    settings = {"deadAfter": "1s", "metricsPort": 0, **connector}
    return make_environment(
        "test",
        feed={"name": "kalshi", "endpoint": "sim"},
        connector=settings,
        markets=markets or {"status": ["open"]},
    )


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path,
    nats_url: str,
    *,
    sim: SimConfig | None = None,
    env: Environment | None = None,
    metrics_port: int | None = None,
    **kw: Any,
) -> AsyncIterator[tuple[KalshiSim, Connector]]:
    cfg = sim or SimConfig(markets=10, rate=500, record_frames=True, lifecycle_interval_s=0)
    if cfg.data_dir == Path("data/sim"):
        from dataclasses import replace

        cfg = replace(cfg, data_dir=tmp_path / "sim")
    async with KalshiSim(cfg) as s:
        ctx = RuntimeContext(
            env=env or connector_env(),
            nats_url=nats_url,
            data_dir=tmp_path / "data",
            feed_ws_url=s.ws_url,
            feed_rest_url=s.rest_url,
            sim_credentials_dir=cfg.data_dir,
            metrics_port=metrics_port,
            status_interval=0.2,
        )
        params: dict[str, Any] = {
            "ack_timeout": 1.0,
            "backoff_base": 0.02,
            "rest_backoff_base": 0.01,
            "rest_backoff_cap": 0.1,
            "metrics_host": "127.0.0.1",
        }
        params.update(kw)
        c = Connector(ctx, **params)
        await c.start()
        try:
            yield s, c
        finally:
            await c.stop()


def frames_by_conn(msgs: list[StreamMsg]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for msg in msgs:
        if msg.subject.startswith("test.kalshi.json."):
            out.setdefault(msg.headers["Ssmd-Conn"], []).append(msg.data)
    return out


async def quiesce(sim: KalshiSim, c: Connector, nc: Client) -> None:
    """Stop the exchange, let every frame reach the connector and JetStream."""
    sim.pause()
    await sim.drain()
    total = sum(len(f) for f in sim_logs(sim).values())

    def received() -> int:
        return sum(s.frames for s in c.shards)

    await until(lambda: received() >= total, 10, "connector to receive every frame")
    assert c.publisher is not None
    assert await c.publisher.wait_idle(10)


def sim_logs(sim: KalshiSim) -> dict[int, list[bytes]]:
    """Every frame the simulator sent, per its connection id (needs record_frames)."""
    return {i: sim.sent_frames(i) for i in sorted(sim._logs)}
