"""The connector component: Kalshi WebSocket -> JetStream, nothing lost, every gap recorded.

``Connector(ctx)`` follows the Component protocol (``start``/``stop``). It resolves the
market universe through REST, shards it over WebSocket connections, publishes every frame
byte for byte through :class:`~ssmd.connector.publisher.Publisher`, writes gap records and
dead letters, follows market lifecycle, serves metrics and writes its status document.

Hooks: ``add_frame_listener(fn(conn, envelope, data, recv_ns))``, ``add_gap_listener(fn(gap))``
and ``add_stored_listener(fn(record, stream_seq))`` (the order books are fed from it);
``request_snapshot()`` re-baselines every book.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from prometheus_client import CollectorRegistry

from ssmd import subjects
from ssmd.books.keeper import BookKeeper
from ssmd.connector.dlq import dead_letter
from ssmd.connector.gaps import GapRecord
from ssmd.connector.metrics import ConnectorCollector, ConnectorStats, MetricsServer
from ssmd.connector.publisher import OverflowGap, Publisher
from ssmd.connector.spill import Record
from ssmd.feeds.kalshi import messages as m
from ssmd.feeds.kalshi.auth import KalshiCredentials
from ssmd.feeds.kalshi.rest_client import KalshiRest
from ssmd.feeds.kalshi.universe import Universe
from ssmd.feeds.kalshi.ws_client import ConnIds, KalshiConnection, WsSettings
from ssmd.runtime import RuntimeContext
from ssmd.spec.types import duration_seconds, parse_size
from ssmd.transport.connect import connect
from ssmd.transport.kv import StatusReporter
from ssmd.transport.streams import ensure_streams, verify_captured

log = logging.getLogger("ssmd.connector")

FrameListener = Callable[[str, m.Envelope, bytes, int], None]
GapListener = Callable[[GapRecord], None]


class ConnectorError(RuntimeError):
    """The connector cannot start (one line saying what to fix)."""


def rest_url_for(ws_url: str) -> str:
    """``wss://host/trade-api/ws/v2`` -> ``https://host/trade-api/v2``."""
    scheme, rest = ws_url.split("://", 1)
    host = rest.split("/", 1)[0]
    return f"{'https' if scheme == 'wss' else 'http'}://{host}/trade-api/v2"


class Connector:
    name = "connector"

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        credentials: Callable[[], KalshiCredentials | None] | None = None,
        ack_timeout: float = 5.0,
        backoff_base: float = 0.5,
        verify_interval: float = 60.0,
        refresh_interval: float = 300.0,
        rest_backoff_base: float = 0.25,
        rest_backoff_cap: float = 30.0,
        books: bool = True,
        metrics_host: str = "0.0.0.0",  # probes come from the kubelet, not localhost
    ) -> None:
        self.ctx = ctx
        env = ctx.env
        self.env_name, self.feed = env.name, env.spec.feed.name
        self.settings = env.spec.connector
        self.stats = ConnectorStats(feed=self.feed)
        self.ids = ConnIds()
        self._credentials = credentials or self._env_credentials
        self._ack_timeout = ack_timeout
        self._backoff_base = backoff_base
        self._verify_interval = verify_interval
        self._refresh_interval = refresh_interval
        self._rest_backoff_base = rest_backoff_base
        self._rest_backoff_cap = rest_backoff_cap
        self._metrics_host = metrics_host
        self._books_enabled = books  # False: capture only (benchmarks of the capture path)
        self._gap_subject = subjects.gap_subject(self.env_name, self.feed)
        self._dlq_subject = subjects.dlq_subject(self.env_name, "connector")
        self.shards: list[KalshiConnection] = []
        self._shard_of: dict[str, KalshiConnection] = {}
        self._pending_lookups: set[str] = set()
        self._frame_listeners: list[FrameListener] = []
        self._gap_listeners: list[GapListener] = []
        self._stored_listeners: list[Callable[[Record, int], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._gap_n = 0
        self._dlq_n = 0
        self._gaps_today: dict[str, int] = {}
        self._rate_at = (time.monotonic(), 0)
        self._nc: Client | None = None
        self.publisher: Publisher | None = None
        self.rest: KalshiRest | None = None
        self.universe: Universe | None = None
        self.metrics: MetricsServer | None = None
        self._status: StatusReporter | None = None
        self.registry = CollectorRegistry()
        self.books: BookKeeper | None = None
        self.ready = False

    def _env_credentials(self) -> KalshiCredentials | None:
        from ssmd.keys.resolve import kalshi_credentials

        return kalshi_credentials(self.ctx.env, self.ctx)

    # -- hooks ----------------------------------------------------------------------------

    def add_frame_listener(self, fn: FrameListener) -> None:
        self._frame_listeners.append(fn)

    def add_gap_listener(self, fn: GapListener) -> None:
        self._gap_listeners.append(fn)

    def add_stored_listener(self, fn: Callable[[Record, int], None]) -> None:
        """``fn(record, stream_seq)`` for every record JetStream acknowledged, in ack order
        (per connection that is stream order). Register before ``start()``."""
        self._stored_listeners.append(fn)

    def _stored(self, rec: Record, seq: int) -> None:
        for fn in self._stored_listeners:
            fn(rec, seq)

    def request_snapshot(self) -> None:
        for s in self.shards:
            s.request_snapshot()

    @property
    def markets(self) -> set[str]:
        return set(self._shard_of)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        ctx, env = self.ctx, self.ctx.env
        ws_url = ctx.feed_ws_url or (None if env.spec.feed.is_simulated else env.spec.feed.endpoint)
        if ws_url is None:
            raise ConnectorError(
                "spec.feed.endpoint is 'sim' but no simulator URL was given: run `ssmd up`, "
                "or start `ssmd sim kalshi` and pass --ws-url"
            )
        rest_url = ctx.feed_rest_url or env.spec.feed.rest_endpoint or rest_url_for(ws_url)
        self._nc = await connect(ctx.nats_url, name=f"ssmd-connector-{self.env_name}")
        js = self._nc.jetstream()
        await ensure_streams(js, env)
        # A publish to a subject no stream captures is lost: check every one we will use.
        sample = "SSMD-CHECK"
        await verify_captured(
            js,
            [
                subjects.json_subject(self.env_name, self.feed, t, sample)
                for t in subjects.FRAME_TYPES
            ]
            + [subjects.json_subject(self.env_name, self.feed, "control", None), self._gap_subject],
            subjects.stream_name(self.env_name, self.feed),
        )
        await verify_captured(js, [self._dlq_subject], subjects.dlq_stream_name(self.env_name))

        s = self.settings
        # Order books + checkpoints on {env}.{feed}.book.* (ssmd.books), fed by the stored hook
        # with every frame JetStream acknowledged. Started before the publisher: it seeds from
        # the checkpoints and reads back what is stored up to now; acks from here on feed it.
        if self._books_enabled:
            self.books = BookKeeper(
                js,
                self.env_name,
                self.feed,
                interval=duration_seconds(s.book_checkpoint_interval),
                resync=self._resync_books,
            )
            await self.books.start()
            self._stored_listeners.insert(0, self.books.on_stored)
            self._gap_listeners.insert(0, self.books.on_gap)
        stored = self._stored_listeners
        spill_path = Path(ctx.data_dir) / "spill" / f"connector-{self.env_name}-{self.feed}.spill"
        self.publisher = Publisher(
            ctx.nats_url,
            spill_path=spill_path,
            spill_max_bytes=parse_size(s.spill_max_bytes),
            max_in_flight=s.max_in_flight,
            queue_size=s.queue_size,
            ack_timeout=self._ack_timeout,
            name=f"ssmd-connector-{self.env_name}-pub",
            on_overflow=self._on_overflow,
            on_rejected=self._on_rejected,
            on_stored=(stored[0] if len(stored) == 1 else self._stored) if stored else None,
        )
        await self.publisher.start()
        self.registry.register(
            ConnectorCollector(
                self.stats,
                self._gauges,
                lambda: self.publisher.stats.acked if self.publisher else 0,
            )
        )
        if ctx.metrics_port is not None:
            self.metrics = MetricsServer(self.registry, lambda: self.ready, host=self._metrics_host)
            await self.metrics.start(ctx.metrics_port)
        self._status = StatusReporter(
            js,
            self.env_name,
            self.name,
            self.snapshot,
            source=ctx.source,
            interval=ctx.status_interval,
        )
        self._status.start()

        self.rest = KalshiRest(
            rest_url,
            rate_per_s=s.rest_rate_per_s,
            credentials=self._credentials,
            backoff_base=self._rest_backoff_base,
            backoff_cap=self._rest_backoff_cap,
            stats=self.stats,
        )
        self.universe = Universe(env.spec.markets, self.rest)
        tickers = await self.universe.resolve()
        self._ws_settings = WsSettings(
            url=ws_url,
            channels=list(env.spec.channels),
            dead_after=duration_seconds(s.dead_after),
            backoff_base=self._backoff_base,
            verify_interval=self._verify_interval,
        )
        self._new_shard()  # shard 0 always exists: it carries market_lifecycle_v2
        self._assign(tickers)
        for shard in self.shards:
            shard.start()
        if self._refresh_interval > 0:
            self._spawn(self._refresh_loop())
        self.ready = True
        log.info(
            "connector %s/%s: %d markets on %d connections (source: %s)",
            self.env_name,
            self.feed,
            len(self._shard_of),
            len(self.shards),
            ctx.source,
        )

    async def stop(self) -> None:
        self.ready = False
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await asyncio.gather(*(s.stop() for s in self.shards), return_exceptions=True)
        if self.publisher is not None:
            await self.publisher.close(timeout=10.0)
        if self.books is not None:
            await self.books.stop()
        if self._status is not None:
            await self._status.stop()
        if self.metrics is not None:
            await self.metrics.stop()
        if self.rest is not None:
            await self.rest.close()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    def _resync_books(self, conn: str, sid: int, tickers: list[str]) -> None:
        for shard in self.shards:
            if shard.conn_id == conn:
                shard.request_snapshot(sid)

    def _spawn(self, coro: Any) -> None:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    # -- shards ---------------------------------------------------------------------------

    def _new_shard(self) -> KalshiConnection:
        shard = KalshiConnection(
            len(self.shards),
            self._ws_settings,
            env=self.env_name,
            feed=self.feed,
            sink=self,
            ids=self.ids,
            credentials=self._credentials,
            lifecycle=not self.shards,
            stats=self.stats,
        )
        self.shards.append(shard)
        return shard

    def _assign(self, tickers: list[str]) -> list[str]:
        """Place new markets on shards with room, opening connections as needed."""
        cap = self.settings.max_markets_per_connection
        plan: dict[int, list[str]] = {}
        load = {s.shard: len(s.markets) for s in self.shards}
        added = []
        for t in tickers:
            if t in self._shard_of:
                continue
            shard = next((s for s in self.shards if load[s.shard] < cap), None)
            if shard is None:
                shard = self._new_shard()
                load[shard.shard] = 0
                if self.ready:
                    shard.start()
            plan.setdefault(shard.shard, []).append(t)
            load[shard.shard] += 1
            self._shard_of[t] = shard
            added.append(t)
        for idx, ts in plan.items():
            self.shards[idx].add_markets(ts)
        return added

    def retire(self, tickers: list[str]) -> None:
        by_shard: dict[int, list[str]] = {}
        for t in tickers:
            shard = self._shard_of.pop(t, None)
            if shard is not None:
                by_shard.setdefault(shard.shard, []).append(t)
        for idx, ts in by_shard.items():
            self.shards[idx].remove_markets(ts)
            log.info("retired %d settled market(s): %s", len(ts), ", ".join(ts[:5]))

    async def _refresh_loop(self) -> None:
        assert self.universe is not None
        while True:
            await asyncio.sleep(self._refresh_interval)
            try:
                added = self._assign(await self.universe.resolve())
                if added:
                    log.info("refresh added %d market(s)", len(added))
            except Exception as exc:
                self.stats.error("universe_refresh")
                log.warning("market universe refresh failed: %s", exc)

    # -- lifecycle follow -----------------------------------------------------------------

    def lifecycle(self, frame: m.MarketLifecycleFrame, shard: int) -> None:
        ticker, kind = frame.market_ticker, frame.event_type
        if kind == "settled":
            if ticker in self._shard_of:
                self.retire([ticker])
            return
        opened = kind == "activated" and frame.msg.is_deactivated is not True
        created_open = (
            kind == "created" and frame.msg.open_ts is not None and frame.msg.open_ts <= time.time()
        )
        if (
            not (opened or created_open)
            or ticker in self._shard_of
            or ticker in self._pending_lookups
        ):
            return
        meta = frame.msg.additional_metadata
        assert self.universe is not None
        if not self.universe.could_match(ticker, meta.event_ticker if meta is not None else None):
            return
        self._pending_lookups.add(ticker)
        self._spawn(self._consider(ticker))

    async def _consider(self, ticker: str) -> None:
        assert self.universe is not None
        try:
            market = await self.universe.lookup(ticker)  # retried through 429s
            ok = market is not None and await self.universe.matches(market, status="open")
            if ok and self._assign([ticker]):
                log.info("market %s opened: added", ticker)
        except Exception as exc:
            self.stats.error("lifecycle_lookup")
            log.warning("lookup of new market %s failed: %s", ticker, exc)
        finally:
            self._pending_lookups.discard(ticker)

    # -- the sink the connections deliver to ----------------------------------------------

    def submit(self, rec: Record, sid: int | None, seq: int | None, ticker: str | None) -> None:
        assert self.publisher is not None
        self.publisher.submit(rec, sid, seq, ticker)

    def frame(self, conn: str, env: m.Envelope, data: bytes, recv_ns: int) -> None:
        for fn in self._frame_listeners:
            fn(conn, env, data, recv_ns)

    def gap(self, gap: GapRecord) -> None:
        self.stats.gap(gap.cause)
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        self._gaps_today = {day: self._gaps_today.get(day, 0) + 1}
        self._gap_n += 1
        rec = Record(
            self._gap_subject,
            gap.to_json(),
            f"{self.ids.prefix}:gap{self._gap_n}",
            gap.detected_ns,
            gap.conn,
        )
        assert self.publisher is not None
        self.publisher.submit(rec, essential=True)
        for fn in self._gap_listeners:
            fn(gap)

    def dead_letter(self, frame: bytes, error: str, conn: str, recv_ns: int) -> None:
        self.stats.dlq += 1
        self.stats.error("parse" if "unknown frame type" not in error else "unknown_type")
        log.warning("dead letter from %s: %s", conn, error)
        self._dlq_n += 1
        doc = dead_letter(
            frame,
            error,
            component="connector",
            conn=conn,
            recv_ns=recv_ns,
            env=self.env_name,
            feed=self.feed,
        )
        assert self.publisher is not None
        self.publisher.submit(
            Record(self._dlq_subject, doc, f"{self.ids.prefix}:dlq{self._dlq_n}", recv_ns, conn)
        )

    def _on_overflow(self, g: OverflowGap) -> None:
        self.gap(
            GapRecord(
                cause="spill_overflow",
                conn=g.conn,
                sid=g.sid,
                expected_seq=g.first_seq,
                received_seq=g.last_seq + 1 if g.last_seq is not None else None,
                markets=sorted(g.markets),
                start_ns=g.start_ns,
                end_ns=g.end_ns,
                dropped=g.dropped,
                detail="JetStream unavailable and the spill file full",
            )
        )
        for s in self.shards:
            if s.conn_id == g.conn and g.sid is not None:
                s.request_snapshot(g.sid)

    def _on_rejected(self, rec: Record, reason: str) -> None:
        if rec.subject == self._dlq_subject:
            self.stats.error("dlq_rejected")
            return
        self.dead_letter(
            rec.payload, f"JetStream rejected the frame: {reason}", rec.conn, rec.recv_ns
        )

    # -- status and metrics ---------------------------------------------------------------

    def _gauges(self) -> dict[str, float]:
        p = self.publisher
        return {
            "spill_depth": p.spill_depth if p else 0,
            "spill_bytes": p.spill_bytes if p else 0,
            "in_flight": p.in_flight if p else 0,
            "queue_depth": p.queue_depth if p else 0,
            "connections": sum(1 for s in self.shards if s.connected),
            "markets": len(self._shard_of),
        }

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        frames = sum(s.frames for s in self.shards)
        t0, f0 = self._rate_at
        rate = (frames - f0) / (now - t0) if now > t0 else 0.0
        self._rate_at = (now, frames)
        last = max((s.last_frame_ns for s in self.shards), default=0)
        p = self.publisher
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        return {
            "env": self.env_name,
            "feed": self.feed,
            "ready": self.ready,
            "markets": len(self._shard_of),
            "connections": [s.snapshot() for s in self.shards],
            "shards": {str(s.shard): len(s.markets) for s in self.shards},
            "msgs_per_sec": round(rate, 1),
            "frames": frames,
            "last_frame_ns": last or None,
            "lag_seconds": self.stats.last_lag,
            "gaps_today": self._gaps_today.get(day, 0),
            "gaps": dict(self.stats.gaps),
            "reconnects": self.stats.reconnects,
            "dead_letters": self.stats.dlq,
            "published": p.stats.acked if p else 0,
            "in_flight": p.in_flight if p else 0,
            "queue_depth": p.queue_depth if p else 0,
            "spill_depth": p.spill_depth if p else 0,
            "nats_connected": p.connected if p else False,
        }
