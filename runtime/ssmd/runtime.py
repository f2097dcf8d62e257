"""What every component receives and how ``ssmd up`` (or a container) runs it.

A component is built from a :class:`RuntimeContext` and started/stopped by its runner; it
talks to the others only through NATS (subjects, streams, KV) and the resource models."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from ssmd.spec.environment import Environment

Source = Literal["exchange", "simulator"]


@dataclass
class RuntimeContext:
    """The resolved environment a component runs in."""

    env: Environment
    nats_url: str
    data_dir: Path = field(default_factory=lambda: Path("./data"))
    # Resolved exchange endpoints: the simulator's real URLs when feed.endpoint is 'sim'.
    feed_ws_url: str | None = None
    feed_rest_url: str | None = None
    # Where local-run secrets come from for the simulator's demo key (see ssmd.sim.kalshi).
    sim_credentials_dir: Path | None = None
    # Prometheus metrics port for this component; None = do not serve metrics.
    metrics_port: int | None = None
    # Per-component status interval (seconds) for the {env}-status KV documents.
    status_interval: float = 2.0

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def feed(self) -> str:
        return self.env.spec.feed.name

    @property
    def source(self) -> Source:
        return "simulator" if self.env.spec.feed.is_simulated else "exchange"

    def logger(self, component: str) -> logging.Logger:
        return logging.getLogger(f"ssmd.{component}")


class Component(Protocol):
    """Started once, stopped once. ``stop`` is graceful: flush, ack, close, then return."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
