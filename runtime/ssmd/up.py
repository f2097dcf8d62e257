"""``ssmd up``: one environment on this machine, in one process tree.

Order matters: NATS first (everything talks through it), then streams, the simulator when the
feed endpoint is ``sim``, then components in data-flow order. Stop goes in reverse so the
connector stops ingesting before the archiver drains and closes its files."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssmd.runtime import Component, RuntimeContext
from ssmd.spec.environment import Environment
from ssmd.transport.connect import connect
from ssmd.transport.server import EmbeddedNats
from ssmd.transport.streams import StreamResult, ensure_streams

log = logging.getLogger("ssmd.up")

# Written while `ssmd up` runs, so other commands in the same directory find its NATS server.
RUN_FILE = "up.json"


def read_run_file(data_dir: Path = Path("./data")) -> dict[str, Any] | None:
    """The running `ssmd up`'s endpoints, or None when none runs from ``data_dir``."""
    import json
    import os

    try:
        info = json.loads((data_dir / RUN_FILE).read_text())
        os.kill(int(info["pid"]), 0)  # a file left by a crashed run is not trusted
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if isinstance(info, dict) else None


# (component name, module, class): started in this order, stopped in reverse.
COMPONENTS: list[tuple[str, str, str]] = [
    ("secmaster", "ssmd.secmaster.service", "Secmaster"),
    ("archiver", "ssmd.archiver.service", "Archiver"),
    ("connector", "ssmd.connector.service", "Connector"),
    ("gateway", "ssmd.gateway.service", "Gateway"),
]

SIMULATED_BANNER = (
    "SIMULATED DATA: the feed is ssmd's built-in Kalshi simulator, not the exchange. "
    "Nothing captured here is real market data."
)


def _enabled(env: Environment, name: str) -> bool:
    settings = getattr(env.spec, name, None)
    return bool(getattr(settings, "enabled", True))


def load_component_class(module: str, cls: str) -> type[Any] | None:
    """The component's class, or None when that component is not part of this build."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            return None
        raise
    found = getattr(mod, cls, None)
    return found if isinstance(found, type) else None


@dataclass
class LocalStack:
    """Everything ``ssmd up`` runs. Use ``async with`` or ``start()``/``stop()``."""

    env: Environment
    data_dir: Path = field(default_factory=lambda: Path("./data"))
    nats: EmbeddedNats | None = None
    nats_url: str | None = None
    sim: Any = None
    streams: list[StreamResult] = field(default_factory=list)
    components: dict[str, Component] = field(default_factory=dict)
    unavailable: list[str] = field(default_factory=list)
    ctx: RuntimeContext | None = None
    # The ports components serve metrics on; 0 = pick free ports (tests), None = from spec.
    metrics_ports: bool = True

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        spec = self.env.spec
        if spec.transport.url:
            self.nats_url = spec.transport.url
        else:
            self.nats = EmbeddedNats(self.data_dir / "nats")
            self.nats_url = await self.nats.start()
        nc = await connect(self.nats_url, name="ssmd-up")
        try:
            self.streams = await ensure_streams(nc.jetstream(), self.env)
        finally:
            await nc.close()

        ctx = RuntimeContext(env=self.env, nats_url=self.nats_url, data_dir=self.data_dir)
        if spec.feed.is_simulated:
            from ssmd.sim.kalshi import KalshiSim, SimConfig

            s = spec.feed.sim
            self.sim = KalshiSim(
                SimConfig(
                    seed=s.seed,
                    markets=s.markets,
                    rate=float(s.rate),
                    port=s.port,
                    data_dir=self.data_dir / "sim",
                )
            )
            await self.sim.start()
            ctx.feed_ws_url = self.sim.ws_url
            ctx.feed_rest_url = self.sim.rest_url
            ctx.sim_credentials_dir = self.data_dir / "sim"
        self.ctx = ctx

        for name, module, cls_name in COMPONENTS:
            if not _enabled(self.env, name):
                continue
            cls = load_component_class(module, cls_name)
            if cls is None:
                self.unavailable.append(name)
                continue
            component: Component = cls(ctx)
            await component.start()
            self.components[name] = component
        self._write_run_file()

    def _write_run_file(self) -> None:
        import json
        import os

        info = {"pid": os.getpid(), "env": self.env.name, "nats_url": self.nats_url}
        gateway = self.components.get("gateway")
        if gateway is not None and isinstance(getattr(gateway, "url", None), str):
            info["gateway_url"] = gateway.url  # type: ignore[attr-defined]
        tmp = self.data_dir / f".{RUN_FILE}.tmp"
        tmp.write_text(json.dumps(info))
        tmp.replace(self.data_dir / RUN_FILE)

    async def stop(self) -> None:
        (self.data_dir / RUN_FILE).unlink(missing_ok=True)
        for name in reversed(list(self.components)):
            try:
                await self.components.pop(name).stop()
            except Exception:  # keep stopping the rest; each one flushes its own data
                log.exception("stopping %s failed", name)
        if self.sim is not None:
            with contextlib.suppress(Exception):
                await self.sim.stop()
            self.sim = None
        if self.nats is not None:
            await self.nats.stop()
            self.nats = None

    async def __aenter__(self) -> LocalStack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def describe(self) -> list[tuple[str, str]]:
        """What runs and where, for the start-up summary."""
        rows = [("environment", self.env.name), ("data directory", str(self.data_dir.resolve()))]
        nats_where = (
            f"{self.nats_url} (embedded, store {self.data_dir / 'nats'})"
            if self.nats
            else str(self.nats_url)
        )
        rows.append(("NATS JetStream", nats_where))
        rows.append(("streams", ", ".join(f"{r.name} ({r.action})" for r in self.streams)))
        if self.sim is not None:
            rows.append(("simulator", f"{self.sim.ws_url}  REST {self.sim.rest_url}"))
        for name, component in self.components.items():
            url = getattr(component, "url", None)
            rows.append((name, f"running  {url}" if isinstance(url, str) else "running"))
        for name in self.unavailable:
            rows.append((name, "not part of this build yet"))
        return rows


# Status-document fields worth a glance, in the order shown: (key, label).
_SUMMARY_FIELDS = [
    ("markets", "markets"),
    ("msgs_per_sec", "msg/s"),
    ("gaps_today", "gaps today"),
    ("records", "records"),
    ("records_written", "records archived"),
    ("lag", "behind"),
    ("lag_messages", "lag"),
    ("clients", "clients"),
    ("books", "books"),
    ("syncs", "syncs"),
]


def summarize(doc: dict[str, Any]) -> str:
    """One short phrase from a component's status document."""
    parts = []
    for key, label in _SUMMARY_FIELDS:
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        parts.append(f"{value:g} {label}" if isinstance(value, float) else f"{value} {label}")
    return ", ".join(parts[:3]) or str(doc.get("status", "ok"))


async def run_until_stopped(stack: LocalStack, stop: asyncio.Event) -> None:
    async with stack:
        await stop.wait()
