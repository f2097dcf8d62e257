"""Prometheus metrics of the connector, and the HTTP endpoint with health probes.

The hot path only increments plain integers in :class:`ConnectorStats`; a custom collector
turns them into metric families when Prometheus scrapes. That keeps the per-frame cost at a
dict increment instead of a labelled, locked prometheus-client child per frame.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

log = logging.getLogger("ssmd.connector.metrics")

LAG_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


@dataclass
class ConnectorStats:
    feed: str
    received: dict[str, int] = field(default_factory=dict)  # by exchange type
    errors: dict[str, int] = field(default_factory=dict)
    gaps: dict[str, int] = field(default_factory=dict)  # by cause
    reconnects: int = 0
    duplicates_seq: int = 0
    dlq: int = 0
    lag_counts: list[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS) + 1))
    lag_sum: float = 0.0
    last_lag: float | None = None

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def gap(self, cause: str) -> None:
        self.gaps[cause] = self.gaps.get(cause, 0) + 1

    def observe_lag(self, seconds: float) -> None:
        self.lag_counts[bisect.bisect_left(LAG_BUCKETS, seconds)] += 1
        self.lag_sum += seconds
        self.last_lag = seconds


class ConnectorCollector(Collector):
    def __init__(
        self,
        stats: ConnectorStats,
        gauges: Callable[[], dict[str, float]],
        published: Callable[[], int],
    ) -> None:
        self._stats = stats
        self._gauges = gauges
        self._published = published

    def collect(self) -> Iterator[Metric]:
        s, feed = self._stats, self._stats.feed
        rec = CounterMetricFamily(
            "ssmd_connector_messages_received", "Exchange frames received", labels=["feed", "type"]
        )
        for t, n in sorted(s.received.items()):
            rec.add_metric([feed, t], n)
        yield rec
        pub = CounterMetricFamily(
            "ssmd_connector_messages_published",
            "Records acknowledged by JetStream",
            labels=["feed"],
        )
        pub.add_metric([feed], self._published())
        yield pub
        err = CounterMetricFamily(
            "ssmd_connector_errors", "Errors by type", labels=["feed", "error_type"]
        )
        for t, n in sorted(s.errors.items()):
            err.add_metric([feed, t], n)
        yield err
        gaps = CounterMetricFamily(
            "ssmd_connector_gaps", "Gap records by cause", labels=["feed", "cause"]
        )
        for c, n in sorted(s.gaps.items()):
            gaps.add_metric([feed, c], n)
        yield gaps
        rc = CounterMetricFamily(
            "ssmd_connector_reconnects", "WebSocket reconnects", labels=["feed"]
        )
        rc.add_metric([feed], s.reconnects)
        yield rc
        dlq = CounterMetricFamily(
            "ssmd_connector_dead_letters", "Frames sent to the DLQ", labels=["feed"]
        )
        dlq.add_metric([feed], s.dlq)
        yield dlq
        buckets: list[tuple[str, float]] = []
        acc = 0
        for bound, n in zip(LAG_BUCKETS, s.lag_counts, strict=False):
            acc += n
            buckets.append((repr(bound), acc))
        acc += s.lag_counts[-1]
        buckets.append(("+Inf", acc))
        lag = HistogramMetricFamily(
            "ssmd_connector_lag_seconds",
            "Receive time minus exchange ts_ms",
            labels=["feed"],
        )
        lag.add_metric([feed], buckets, s.lag_sum)
        yield lag
        for name, value in sorted(self._gauges().items()):
            g = GaugeMetricFamily(f"ssmd_connector_{name}", name.replace("_", " "), labels=["feed"])
            g.add_metric([feed], value)
            yield g


class MetricsServer:
    """``/metrics``, ``/healthz`` (process alive) and ``/readyz`` (capturing) on one port."""

    def __init__(
        self, registry: CollectorRegistry, ready: Callable[[], bool], host: str = "0.0.0.0"
    ) -> None:
        self._registry = registry
        self._ready = ready
        self._host = host
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self, port: int) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(
            body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
        )

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self._ready():
            return web.Response(text="ready\n")
        return web.Response(text="not ready\n", status=503)
