"""One Kalshi WebSocket connection (one shard of the market universe), reconnecting forever.

Per connection: a freshly signed handshake, subscribe the configured channels, handle
``subscribed``/``ok``/``error``/``unsubscribed`` inside the normal read loop (never in a side
loop that could drop data), check ``seq`` per ``sid``, and hand every frame, byte for byte,
to the sink without awaiting anything. Commands go out through a writer task.

Dead-connection detection uses only what was *received*: any frame, including the server's
pings, refreshes the clock; a connection with nothing received for ``dead_after`` is closed
(lessons.md: sent pings must not count as activity). websockets also sends its own pings
and closes when their pongs stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame

from ssmd import subjects
from ssmd.connector.gaps import GapCause, GapRecord
from ssmd.connector.spill import Record
from ssmd.feeds.kalshi import messages as m
from ssmd.feeds.kalshi.auth import KalshiCredentials

log = logging.getLogger("ssmd.connector.kalshi.ws")

CONTROL_TYPES = frozenset(("subscribed", "ok", "error", "unsubscribed"))
LIFECYCLE_TYPES = frozenset(("market_lifecycle_v2", "event_lifecycle"))
MARKET_CHANNELS = ("orderbook_delta", "ticker", "trade")
LIFECYCLE_CHANNEL = "market_lifecycle_v2"
_CHUNK = 500  # markets per command: keeps commands well under any frame limit


class Sink(Protocol):
    """Where a connection delivers frames, gaps and dead letters (the Connector)."""

    def submit(self, rec: Record, sid: int | None, seq: int | None, ticker: str | None) -> None: ...

    def gap(self, gap: GapRecord) -> None: ...

    def dead_letter(self, frame: bytes, error: str, conn: str, recv_ns: int) -> None: ...

    def lifecycle(self, frame: m.MarketLifecycleFrame, shard: int) -> None: ...

    def frame(self, conn: str, env: m.Envelope, data: bytes, recv_ns: int) -> None: ...


class ConnIds:
    """Connection ids unique across reconnects and process restarts: random prefix + counter."""

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or secrets.token_hex(4)
        self._n = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}-{next(self._n)}"


@dataclass
class WsSettings:
    url: str
    channels: Sequence[str]
    dead_after: float = 30.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    open_timeout: float = 10.0
    verify_interval: float = 60.0  # list_subscriptions check
    max_size: int = 64 << 20  # Kalshi's server message limit


@dataclass
class _Sub:
    sid: int
    channel: str
    markets: set[str] = field(default_factory=set)


@dataclass
class _Cmd:
    kind: str  # subscribe | add_markets | delete_markets | get_snapshot | unsubscribe | list
    channels: tuple[str, ...] = ()
    markets: tuple[str, ...] = ()
    sid: int | None = None
    acked: set[str] = field(default_factory=set)


class _Conn(ClientConnection):
    """Remembers when anything (data, ping, pong, close) was last received."""

    last_rx: float = 0.0

    def process_event(self, event: Any) -> None:
        if isinstance(event, Frame):
            self.last_rx = time.monotonic()
        super().process_event(event)


class KalshiConnection:
    def __init__(
        self,
        shard: int,
        settings: WsSettings,
        *,
        env: str,
        feed: str,
        sink: Sink,
        ids: ConnIds,
        credentials: Callable[[], KalshiCredentials | None],
        lifecycle: bool = False,
        stats: Any = None,
    ) -> None:
        self.shard = shard
        self.settings = settings
        self.env, self.feed = env, feed
        self.sink = sink
        self.ids = ids
        self.credentials = credentials
        self.lifecycle = lifecycle and LIFECYCLE_CHANNEL in settings.channels
        self.market_channels = tuple(c for c in settings.channels if c in MARKET_CHANNELS)
        self.stats = stats
        self.markets: set[str] = set()
        self.conn_id = ""
        self.connected = False
        self.reconnects = 0
        self.frames = 0
        self.last_frame_ns = 0
        self._ws: _Conn | None = None
        self._subs: dict[int, _Sub] = {}
        self._chan_sid: dict[str, int] = {}
        self._subscribing: set[str] = set()
        self._cmds: dict[int, _Cmd] = {}
        self._cmd_ids = itertools.count(1)
        self._out: asyncio.Queue[bytes] = asyncio.Queue()
        self._last_seq: dict[int, int] = {}
        self._last_seq_ns: dict[int, int] = {}
        self._fc = 0
        self._subjects: dict[tuple[str, str | None], str] = {}
        self._outage: GapRecord | None = None
        self._dead_cause: GapCause | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._wake_stop = asyncio.Event()
        self._retry_handles: list[asyncio.TimerHandle] = []

    # -- control from the connector -------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"kalshi-ws-{self.shard}")

    async def stop(self) -> None:
        self._stopping = True
        self._wake_stop.set()
        for h in self._retry_handles:
            h.cancel()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._outage is not None:
            # Still down at shutdown: the outage has no end, but it must be on record.
            self._emit_gap(self._outage)
            self._outage = None

    def add_markets(self, tickers: Iterable[str]) -> list[str]:
        new = sorted(t for t in tickers if t not in self.markets)
        if not new:
            return []
        self.markets.update(new)
        if self.connected:
            self._reconcile()
        return new

    def remove_markets(self, tickers: Iterable[str]) -> list[str]:
        gone = sorted(t for t in tickers if t in self.markets)
        if not gone:
            return []
        self.markets.difference_update(gone)
        if self.connected:
            self._reconcile()
        return gone

    def request_snapshot(self, sid: int | None = None) -> None:
        """Ask for fresh order-book snapshots (all orderbook sids when ``sid`` is None)."""
        for s in list(self._subs.values()):
            if s.channel == "orderbook_delta" and (sid is None or s.sid == sid) and s.markets:
                for chunk in _chunks(sorted(s.markets)):
                    self._command(_Cmd("get_snapshot", markets=tuple(chunk), sid=s.sid))

    def snapshot(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "conn": self.conn_id,
            "connected": self.connected,
            "markets": len(self.markets),
            "subscriptions": {
                str(s.sid): {"channel": s.channel, "markets": len(s.markets)}
                for s in self._subs.values()
            },
            "frames": self.frames,
            "last_frame_ns": self.last_frame_ns or None,
            "reconnects": self.reconnects,
        }

    # -- the connection loop --------------------------------------------------------------

    async def run(self) -> None:
        attempt = 0
        while not self._stopping:
            started = time.monotonic()
            self.conn_id = self.ids.next()
            ws = await self._open()
            if ws is not None:
                await self._session(ws)
                if self._stopping:
                    return
                self._begin_outage()
            if time.monotonic() - started > 10 * self.settings.backoff_base + 5:
                attempt = 0  # it ran for a while: start backing off from the beginning
            delay = min(self.settings.backoff_cap, self.settings.backoff_base * 2**attempt)
            delay *= 0.5 + random.random() / 2  # jitter: many shards must not reconnect in step
            attempt = min(attempt + 1, 20)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_stop.wait(), delay)

    async def _open(self) -> _Conn | None:
        s = self.settings
        try:
            creds = self.credentials()  # fresh every time: a rotated key is picked up
            headers = creds.headers() if creds is not None else {}
        except Exception as exc:
            self._error("credentials")
            log.error("shard %d: cannot load Kalshi credentials: %s", self.shard, exc)
            return None
        keepalive = max(s.dead_after / 2, 0.05)
        try:
            ws = await connect(
                s.url,
                additional_headers=headers,
                create_connection=_Conn,
                open_timeout=s.open_timeout,
                # Our watchdog (dead_after) speaks first; a missing pong closes later.
                ping_interval=keepalive,
                ping_timeout=s.dead_after,
                close_timeout=1.0,
                max_size=s.max_size,
                # Bounded: if we fall behind, TCP pushes back instead of memory growing.
                max_queue=16384,
                compression=None,
            )
        except InvalidStatus as exc:
            self._error("handshake")
            code = exc.response.status_code
            log.error(
                "shard %d: handshake rejected with HTTP %s (check the API key)", self.shard, code
            )
            return None
        except Exception as exc:
            self._error("connect")
            log.warning("shard %d: cannot connect: %s", self.shard, exc.__class__.__name__)
            return None
        return ws  # type: ignore[return-value]

    async def _session(self, ws: _Conn) -> None:
        self._ws = ws
        ws.last_rx = time.monotonic()
        self._subs.clear()
        self._chan_sid.clear()
        self._subscribing.clear()
        self._cmds.clear()
        self._last_seq.clear()
        self._last_seq_ns.clear()
        self._fc = 0
        self._out = asyncio.Queue()
        self._dead_cause = None
        self.connected = True
        log.info(
            "shard %d: connected as %s, %d markets", self.shard, self.conn_id, len(self.markets)
        )
        writer = asyncio.create_task(self._writer(ws), name=f"kalshi-ws-writer-{self.shard}")
        watchdog = asyncio.create_task(self._watchdog(ws), name=f"kalshi-ws-watchdog-{self.shard}")
        self._subscribe_all()
        try:
            await self._read(ws)
        except ConnectionClosed as exc:
            if self._dead_cause is None and "keepalive ping timeout" in str(exc):
                self._dead_cause = "stall"  # our pings went unanswered: a silent peer
            if not self._stopping:
                log.warning("shard %d: connection %s closed: %s", self.shard, self.conn_id, exc)
        finally:
            self.connected = False
            self._ws = None
            for t in (writer, watchdog):
                t.cancel()
            for t in (writer, watchdog):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            with contextlib.suppress(Exception):
                ws.transport.abort()

    def _begin_outage(self) -> None:
        self.reconnects += 1
        if self.stats is not None:
            self.stats.reconnects += 1
        cause: GapCause = self._dead_cause or "disconnect"
        self._outage = GapRecord(
            cause=cause,
            conn=self.conn_id,
            markets=sorted(self.markets),
            start_ns=self.last_frame_ns or None,
            detected_ns=time.time_ns(),
            detail="no frame or ping received within dead_after"
            if cause == "stall"
            else "socket closed",
        )

    async def _watchdog(self, ws: _Conn) -> None:
        dead_after = self.settings.dead_after
        verify_at = time.monotonic() + self.settings.verify_interval
        tick = max(min(dead_after / 4, 1.0), 0.01)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if now - ws.last_rx > dead_after:
                log.warning(
                    "shard %d: nothing received on %s for %.1fs: treating it as dead",
                    self.shard,
                    self.conn_id,
                    now - ws.last_rx,
                )
                self._dead_cause = "stall"
                ws.transport.abort()  # no close handshake with a peer that is not answering
                return
            if now >= verify_at:
                verify_at = now + self.settings.verify_interval
                self._command(_Cmd("list"))

    async def _writer(self, ws: _Conn) -> None:
        while True:
            data = await self._out.get()
            await ws.send(data.decode(), text=True)

    # -- the read loop (hot path) ---------------------------------------------------------

    async def _read(self, ws: _Conn) -> None:
        recv = ws.recv
        decode = m.decode_envelope
        sink = self.sink
        submit = sink.submit
        frame_hook = sink.frame
        subj = self._subjects
        last_seq = self._last_seq
        last_seq_ns = self._last_seq_ns
        received: dict[str, int] = self.stats.received if self.stats is not None else {}
        observe_lag = self.stats.observe_lag if self.stats is not None else None
        known = m.KNOWN_FRAME_TYPES
        conn = self.conn_id
        now_ns = time.time_ns
        while True:
            data = await recv(decode=False)
            now = now_ns()
            self.last_frame_ns = now
            self.frames += 1
            if self.frames & 63 == 0:
                # recv() does not suspend while frames are buffered: give the publisher and
                # the ack handler their turn, or a burst would starve them.
                await asyncio.sleep(0)
            if self._outage is not None:
                self._end_outage(now)
            try:
                env = decode(data)
            except m.FrameParseError as exc:
                received["_malformed"] = received.get("_malformed", 0) + 1
                sink.dead_letter(data, str(exc), conn, now)
                continue
            t = env.type
            received[t] = received.get(t, 0) + 1
            if t not in known:
                sink.dead_letter(data, f"unknown frame type {t!r}", conn, now)
                continue
            ticker = env.market_ticker
            subject = subj.get((t, ticker))
            if subject is None:
                subject = subj[(t, ticker)] = subjects.json_subject(
                    self.env, self.feed, subjects.frame_type_for(t), ticker
                )
            seq = env.seq
            sid = env.top_sid
            if seq is not None and t not in CONTROL_TYPES:
                last = last_seq.get(sid, 0)  # type: ignore[arg-type]
                if seq != last + 1:
                    if seq <= last:
                        if self.stats is not None:
                            self.stats.duplicates_seq += 1
                        continue  # already published under this Msg-Id
                    self._seq_gap(sid, last + 1, seq, now)  # type: ignore[arg-type]
                last_seq[sid] = seq  # type: ignore[index]
                last_seq_ns[sid] = now  # type: ignore[index]
                msg_id = f"{conn}:{sid}:{seq}"
            else:
                self._fc += 1
                msg_id = f"{conn}:f{self._fc}"
            submit(Record(subject, data, msg_id, now, conn), sid, seq, ticker)
            if observe_lag is not None:
                ts = env.ts_ms
                if ts is not None:
                    observe_lag(now / 1e9 - ts / 1e3)
            if t in CONTROL_TYPES:
                self._on_control(data)
            elif t in LIFECYCLE_TYPES:
                self._on_lifecycle(data)
            frame_hook(conn, env, data, now)

    def _end_outage(self, now: int) -> None:
        gap, self._outage = self._outage, None
        assert gap is not None
        gap.end_ns = now
        gap.detail = f"{gap.detail}; resubscribed on {self.conn_id}"
        self._emit_gap(gap)

    def _seq_gap(self, sid: int, expected: int, received: int, now: int) -> None:
        sub = self._subs.get(sid)
        markets = sorted(sub.markets) if sub is not None else []
        log.warning(
            "shard %d: seq gap on %s sid %d: expected %d, got %d (%d markets)",
            self.shard,
            self.conn_id,
            sid,
            expected,
            received,
            len(markets),
        )
        self._emit_gap(
            GapRecord(
                cause="seq_gap",
                conn=self.conn_id,
                sid=sid,
                expected_seq=expected,
                received_seq=received,
                markets=markets,
                start_ns=self._last_seq_ns.get(sid),
                end_ns=now,
                detected_ns=now,
                channel=sub.channel if sub is not None else None,
            )
        )
        # Re-baseline: every book of the sid is stale until its new snapshot arrives.
        self.request_snapshot(sid)

    def _emit_gap(self, gap: GapRecord) -> None:
        self.sink.gap(gap)

    def _error(self, kind: str) -> None:
        if self.stats is not None:
            self.stats.error(kind)

    # -- commands and their answers -------------------------------------------------------

    def _command(self, cmd: _Cmd) -> None:
        if not self.connected:
            return
        cid = next(self._cmd_ids)
        if cmd.kind == "subscribe":
            data = m.subscribe(cid, cmd.channels, list(cmd.markets) or None)
        elif cmd.kind in ("add_markets", "delete_markets", "get_snapshot"):
            assert cmd.sid is not None
            data = m.update_subscription(cid, cmd.sid, cmd.kind, list(cmd.markets))  # type: ignore[arg-type]
        elif cmd.kind == "unsubscribe":
            assert cmd.sid is not None
            data = m.unsubscribe(cid, [cmd.sid])
        else:
            data = m.list_subscriptions(cid)
        self._cmds[cid] = cmd
        self._out.put_nowait(data)

    def _subscribe_all(self) -> None:
        if self.lifecycle:
            self._subscribing.add(LIFECYCLE_CHANNEL)
            self._command(_Cmd("subscribe", channels=(LIFECYCLE_CHANNEL,)))
        self._subscribe_markets(self.market_channels)

    def _subscribe_markets(self, channels: Sequence[str]) -> None:
        if not channels or not self.markets:
            return
        markets = sorted(self.markets)
        self._subscribing.update(channels)
        # One command per chunk; the first creates the sids, later chunks are added to them.
        self._command(_Cmd("subscribe", channels=tuple(channels), markets=tuple(markets[:_CHUNK])))

    def _reconcile(self) -> None:
        """Bring every market subscription in line with ``self.markets``, sid by sid."""
        for ch in self.market_channels:
            if ch in self._subscribing:
                continue  # the answer to the subscribe will trigger this again
            sid = self._chan_sid.get(ch)
            if sid is None:
                if self.markets:
                    self._subscribe_markets([ch])
                continue
            sub = self._subs[sid]
            add = sorted(self.markets - sub.markets)
            remove = sorted(sub.markets - self.markets)
            if remove and not (sub.markets - set(remove)):
                # Nothing left in it: the subscription is ours alone, end it.
                self._command(_Cmd("unsubscribe", sid=sid))
                sub.markets.clear()
                self._chan_sid.pop(ch, None)
                if add:
                    self._subscribe_markets([ch])
                continue
            for chunk in _chunks(remove):
                sub.markets.difference_update(chunk)
                self._command(_Cmd("delete_markets", markets=tuple(chunk), sid=sid))
            for chunk in _chunks(add):
                sub.markets.update(chunk)
                self._command(_Cmd("add_markets", markets=tuple(chunk), sid=sid))

    def _on_control(self, data: bytes) -> None:
        try:
            frame = m.parse_frame(data)
        except m.FrameParseError as exc:
            log.warning("shard %d: unparsable control frame: %s", self.shard, exc)
            return
        if isinstance(frame, m.SubscribedFrame):
            self._on_subscribed(frame)
        elif isinstance(frame, m.OkFrame):
            self._on_ok(frame)
        elif isinstance(frame, m.ErrorFrame):
            self._on_error(frame)
        elif isinstance(frame, m.UnsubscribedFrame):
            self._subs.pop(frame.sid, None)

    def _on_subscribed(self, frame: m.SubscribedFrame) -> None:
        cmd = self._cmds.get(frame.id) if frame.id is not None else None
        sid, channel = frame.sid, frame.channel
        if sid is None or channel is None:
            return
        markets = set(cmd.markets) if cmd is not None else set()
        self._subs[sid] = _Sub(sid, channel, markets if channel in MARKET_CHANNELS else set())
        self._chan_sid[channel] = sid
        self._subscribing.discard(channel)
        if cmd is not None:
            cmd.acked.add(channel)
            if cmd.acked >= set(cmd.channels) and frame.id is not None:
                self._cmds.pop(frame.id, None)
        if channel in MARKET_CHANNELS:
            self._reconcile()  # markets added meanwhile, or beyond the first chunk

    def _on_ok(self, frame: m.OkFrame) -> None:
        cmd = self._cmds.pop(frame.id, None) if frame.id is not None else None
        subs = frame.subscriptions
        if subs is not None:
            self._verify(subs)
            return
        tickers = frame.market_tickers
        if (
            cmd is not None
            and cmd.sid is not None
            and tickers is not None
            and cmd.kind != "get_snapshot"
        ):
            sub = self._subs.get(cmd.sid)
            if sub is not None:
                sub.markets = set(tickers)

    def _verify(self, listed: list[m.SubscriptionInfo]) -> None:
        alive = {s.sid for s in listed}
        for sid, sub in list(self._subs.items()):
            if sid not in alive:
                self._lost_subscription(sub, "missing from list_subscriptions")

    def _on_error(self, frame: m.ErrorFrame) -> None:
        cmd = self._cmds.pop(frame.id, None) if frame.id is not None else None
        code, text = frame.code, frame.message
        if cmd is None:
            sub = self._subs.get(frame.sid) if frame.sid is not None else None
            if sub is not None:
                # The exchange dropped a subscription (10, 17, 25...): resubscribe it.
                self._lost_subscription(sub, f"error {code}: {text}")
            else:
                log.warning("shard %d: exchange error %d: %s", self.shard, code, text)
            return
        if cmd.kind in ("subscribe", "add_markets"):
            bad = frame.market_ticker
            markets = [bad] if bad else list(cmd.markets)
            self._emit_gap(
                GapRecord(
                    cause="subscription_rejected",
                    conn=self.conn_id,
                    sid=cmd.sid,
                    markets=markets,
                    detected_ns=time.time_ns(),
                    channel=",".join(cmd.channels) or None,
                    detail=f"{cmd.kind} refused: error {code}: {text}",
                )
            )
            log.error("shard %d: %s refused: error %d: %s", self.shard, cmd.kind, code, text)
            if cmd.kind == "subscribe":
                self._subscribing.difference_update(cmd.channels)
            if cmd.sid is not None and cmd.sid in self._subs:
                self._subs[cmd.sid].markets.difference_update(cmd.markets)
            if code == 16 and bad:
                self.markets.discard(bad)  # the exchange has no such market
            # Try again later, without hammering the exchange.
            self._later(max(self.settings.backoff_base * 4, 1.0), self._reconcile_and_subscribe)
        else:
            log.warning("shard %d: %s refused: error %d: %s", self.shard, cmd.kind, code, text)

    def _reconcile_and_subscribe(self) -> None:
        if not self.connected:
            return
        if (
            self.lifecycle
            and LIFECYCLE_CHANNEL not in self._chan_sid
            and LIFECYCLE_CHANNEL not in self._subscribing
        ):
            self._subscribing.add(LIFECYCLE_CHANNEL)
            self._command(_Cmd("subscribe", channels=(LIFECYCLE_CHANNEL,)))
        self._reconcile()

    def _lost_subscription(self, sub: _Sub, why: str) -> None:
        self._subs.pop(sub.sid, None)
        if self._chan_sid.get(sub.channel) == sub.sid:
            self._chan_sid.pop(sub.channel, None)
        self._emit_gap(
            GapRecord(
                cause="subscription_rejected",
                conn=self.conn_id,
                sid=sub.sid,
                expected_seq=(self._last_seq.get(sub.sid) or 0) + 1
                if sub.sid in self._last_seq
                else None,
                markets=sorted(sub.markets),
                start_ns=self._last_seq_ns.get(sub.sid) or self.last_frame_ns or None,
                detected_ns=time.time_ns(),
                channel=sub.channel,
                detail=f"subscription dropped: {why}",
            )
        )
        log.warning(
            "shard %d: subscription %d (%s) dropped: %s; resubscribing",
            self.shard,
            sub.sid,
            sub.channel,
            why,
        )
        self._reconcile_and_subscribe()

    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        self._retry_handles = [h for h in self._retry_handles if not h.cancelled()]
        self._retry_handles.append(loop.call_later(delay, fn))

    def _on_lifecycle(self, data: bytes) -> None:
        try:
            frame = m.parse_frame(data)
        except m.FrameParseError as exc:
            log.warning("shard %d: unparsable lifecycle frame: %s", self.shard, exc)
            return
        if isinstance(frame, m.MarketLifecycleFrame):
            self.sink.lifecycle(frame, self.shard)


def _chunks(items: Sequence[str], n: int = _CHUNK) -> list[Sequence[str]]:
    return [items[i : i + n] for i in range(0, len(items), n)]
