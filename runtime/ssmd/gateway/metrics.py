"""Prometheus ``/metrics`` for the gateway. Counters live as plain ints on the hot path and
are read at scrape time (a prometheus Counter per message would cost a lock each)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from ssmd.books.builder import BookState

if TYPE_CHECKING:
    from ssmd.gateway.service import Gateway


class GatewayCollector(Collector):
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    def collect(
        self,
    ) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        gw = self.gw
        hub, feed = gw.hub, gw.feed
        g = GaugeMetricFamily("ssmd_gateway_clients_connected", "WebSocket clients connected")
        g.add_metric([], len(hub.clients))
        yield g
        c = CounterMetricFamily("ssmd_gateway_messages_sent", "Messages sent to clients")
        c.add_metric([], hub.sent_total)
        yield c
        c = CounterMetricFamily(
            "ssmd_gateway_messages_dropped", "Messages dropped by client buffer policies"
        )
        c.add_metric([], hub.dropped_total)
        yield c
        lag = GaugeMetricFamily(
            "ssmd_gateway_client_lag_messages", "Messages queued for a client", labels=["client"]
        )
        for cl in hub.clients.values():
            lag.add_metric([cl.id], cl.lag)
        yield lag
        st = GaugeMetricFamily(
            "ssmd_gateway_clients_by_state", "Clients per health state", labels=["state"]
        )
        counts: dict[str, int] = {}
        for cl in hub.clients.values():
            counts[cl.state.value] = counts.get(cl.state.value, 0) + 1
        for s in ("healthy", "lagging", "dropping", "disconnecting"):
            st.add_metric([s], counts.get(s, 0))
        yield st
        d = CounterMetricFamily(
            "ssmd_gateway_disconnects", "Clients disconnected by the gateway", labels=["reason"]
        )
        for reason, n in hub.disconnects.items():
            d.add_metric([reason], n)
        yield d
        c = CounterMetricFamily("ssmd_gateway_frames_received", "Frames read from JetStream")
        c.add_metric([], feed.frames)
        yield c
        c = CounterMetricFamily("ssmd_gateway_events", "Events fanned out")
        c.add_metric([], hub.events)
        yield c
        b = GaugeMetricFamily("ssmd_gateway_books", "Order books by state", labels=["state"])
        states = [e.state for e in feed.builder.books.values()]
        for s in BookState:
            b.add_metric([s.value], states.count(s))
        yield b
        h = HistogramMetricFamily(
            "ssmd_gateway_frame_age_seconds",
            "Connector receive to gateway receive, per frame",
        )
        acc, buckets = 0, []
        for bound, n in zip(feed.age.bounds, feed.age.counts, strict=False):
            acc += n
            buckets.append((repr(bound), acc))
        buckets.append(("+Inf", acc + feed.age.counts[-1]))
        h.add_metric([], buckets, feed.age.sum)
        yield h
        g = GaugeMetricFamily("ssmd_gateway_stream_seq", "Last JetStream sequence applied")
        g.add_metric([], feed.last_seq)
        yield g


def registry_for(gw: Gateway) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(GatewayCollector(gw))
    return reg


def render(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)
