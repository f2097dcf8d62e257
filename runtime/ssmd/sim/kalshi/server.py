"""``KalshiSim``: the simulated exchange on one port (WebSocket v2, REST v2, admin API).

The engine task releases the global event stream against the wall clock (or as fast as
clients take it when rate=0), fans it out to every subscription and flushes each
connection once per batch. Commands are handled in each connection's reader task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

from ssmd.feeds.kalshi import REST_PREFIX, WS_PATH
from ssmd.sim.kalshi import commands
from ssmd.sim.kalshi.admin import admin_routes
from ssmd.sim.kalshi.book import TrueBook
from ssmd.sim.kalshi.config import SimConfig
from ssmd.sim.kalshi.engine import Engine
from ssmd.sim.kalshi.faults import Fault, FaultBoard
from ssmd.sim.kalshi.hub import Hub
from ssmd.sim.kalshi.keys import KeyRing, demo_credentials_paths, ensure_demo_credentials
from ssmd.sim.kalshi.rest import Rest
from ssmd.sim.kalshi.session import Connection, error_frame
from ssmd.sim.kalshi.universe import Universe

log = logging.getLogger("ssmd.sim.kalshi")

PACED_MAX_BATCH = 4096  # messages per engine iteration when paced (bounds latency)
FAST_BATCH = 512  # messages per engine iteration when rate=0
BACKPRESSURE_MAX_WAIT_S = 0.5  # rate=0: how long a full socket may hold the engine back
MAX_LAG_US = 1_000_000  # paced: more behind than this and the engine sheds, not bursts


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("simulator engine stopped", exc_info=task.exception())


@dataclass(frozen=True)
class MarketInfo:
    ticker: str
    market_id: str
    event_ticker: str
    series_ticker: str
    status: str
    title: str


class KalshiSim:
    """A Kalshi-compatible exchange. ``async with KalshiSim(SimConfig(...)) as sim: ...``"""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.board = FaultBoard()
        self.hub = Hub(self.board)
        self.key_id: str | None = None
        self.credentials_paths: tuple[Path, Path] | None = None
        self.start_ms = 0
        self._port = 0
        self._runner: web.AppRunner | None = None
        self._engine_task: asyncio.Task[None] | None = None
        self._paused = self.config.paused
        self._resumed = asyncio.Event()
        self._logs: dict[int, list[bytes]] = {}
        self._conn_event = asyncio.Event()
        self._accepted = 0  # id of the last connection accepted (ids count up from 1)
        self._w0 = 0.0
        self._v0 = 0
        self.universe: Universe
        self.engine: Engine
        self._ctx: commands.Context
        self._keys: KeyRing

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> KalshiSim:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        cfg = self.config
        self.start_ms = cfg.start_ms if cfg.start_ms is not None else time.time_ns() // 1_000_000
        self.universe = Universe(cfg.seed, cfg.markets, self.start_ms)
        self.engine = Engine(
            self.universe,
            seed=cfg.seed,
            start_ms=self.start_ms,
            rate=cfg.rate,
            nominal_rate=cfg.nominal_rate,
            lifecycle_interval_s=cfg.lifecycle_interval_s,
            trade_history=cfg.trade_history,
        )
        self._ctx = commands.Context(self.hub, self.engine, self.universe, cfg)
        keys = dict(cfg.keys)
        if not keys:
            key_id, pub = await asyncio.to_thread(ensure_demo_credentials, cfg.data_dir)
            keys[key_id] = pub
            self.key_id = key_id
            self.credentials_paths = demo_credentials_paths(cfg.data_dir)
        self._keys = KeyRing(keys, cfg.auth_max_skew_s, cfg.allow_unauthenticated)
        for fault in cfg.faults:
            self.hub.inject(fault)

        app = web.Application()
        app.router.add_get(WS_PATH, self._ws_handler)
        app.router.add_routes(Rest(self.universe, self.engine, self.board).routes())
        app.router.add_routes(admin_routes(self))
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        self._port = self._runner.addresses[0][1]
        self._engine_task = asyncio.create_task(self._run_engine(), name="ssmd-sim-engine")
        self._engine_task.add_done_callback(_log_crash)

    async def stop(self) -> None:
        if self._engine_task is not None:
            self._engine_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._engine_task
            self._engine_task = None
        closers = []
        for conn in list(self.hub.conns.values()):
            conn.stalled = False
            if conn.ws is not None and not conn.ws.closed:
                closers.append(conn.ws.close(code=1001, message=b"simulator stopping"))
        if closers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*closers, return_exceptions=True), 2.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- addresses ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        h = self.config.host
        return "127.0.0.1" if h in ("0.0.0.0", "", "::") else h

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self._port}{WS_PATH}"

    @property
    def rest_url(self) -> str:
        return f"{self.base_url}{REST_PREFIX}"

    @property
    def admin_url(self) -> str:
        return f"{self.base_url}/admin"

    # -- in-process control and truth -----------------------------------------------------

    @property
    def markets(self) -> list[MarketInfo]:
        return [
            MarketInfo(
                m.ticker, m.market_id, m.event_ticker, m.series_ticker, m.status.value, m.title
            )
            for m in self.universe.markets
        ]

    @property
    def virtual_now_ms(self) -> int:
        return self.engine.vnow_us // 1000

    def inject(self, fault: Fault) -> None:
        self.hub.inject(fault)

    def clear_faults(self) -> None:
        """Drop pending faults and release stalled connections."""
        self.hub.clear_faults()

    def faults(self) -> list[dict[str, Any]]:
        return self.board.describe()

    def true_book(self, ticker: str) -> TrueBook:
        i = self.universe.by_ticker[ticker]
        m = self.universe.markets[i]
        return TrueBook.of(m.ticker, m.market_id, self.engine.books[i])

    def true_books(self) -> dict[str, TrueBook]:
        return {
            m.ticker: TrueBook.of(m.ticker, m.market_id, self.engine.books[m.index])
            for m in self.universe.markets
        }

    def sent_frames(self, conn_id: int) -> list[bytes]:
        """Every frame sent to a connection, in order, byte for byte (needs record_frames)."""
        if not self.config.record_frames:
            raise RuntimeError("start the simulator with record_frames=True to keep sent frames")
        return list(self._logs.get(conn_id, ()))

    def connections(self) -> list[dict[str, Any]]:
        return self.hub.describe(lambda i: self.universe.markets[i].ticker)

    async def wait_connection(self, conn_id: int, timeout: float = 5.0) -> None:
        """Wait until connection ``conn_id`` (1 = the first) has been accepted."""
        async with asyncio.timeout(timeout):
            while self._accepted < conn_id:
                self._conn_event.clear()
                await self._conn_event.wait()

    def pause(self) -> None:
        self._paused = True
        self._resumed.clear()

    def resume(self) -> None:
        self._paused = False
        self._resumed.set()

    @property
    def paused(self) -> bool:
        return self._paused

    async def step(self, n: int) -> int:
        """Generate at least ``n`` messages now (typically while paused) and send them."""
        msgs = self.engine.run(n)
        count = len(msgs)
        self.hub.dispatch(msgs)
        self.hub.flush()
        return count

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every queued frame has been handed to the sockets and sent."""
        async with asyncio.timeout(timeout):
            while True:
                self.hub.flush()
                busy = False
                for c in self.hub.conns.values():
                    if c.closed or c.stalled:
                        continue
                    t = c.transport
                    if c.out or (
                        t is not None and not t.is_closing() and t.get_write_buffer_size() > 0
                    ):
                        busy = True
                if not busy:
                    return
                await asyncio.sleep(0.001)

    def stats(self) -> dict[str, Any]:
        e = self.engine
        return {
            "simulated": True,
            "seed": self.config.seed,
            "rate": self.config.rate,
            "paused": self._paused,
            "messages": e.messages,
            "trades": e.trade_seq,
            "markets": len(self.universe.markets),
            "active_markets": len(e.active),
            "virtual_now_ms": self.virtual_now_ms,
            "start_ms": self.start_ms,
            "connections": len(self.hub.conns),
        }

    # -- the engine task ------------------------------------------------------------------

    def _anchor(self) -> None:
        self._w0 = asyncio.get_running_loop().time()
        self._v0 = self.engine.vnow_us

    async def _run_engine(self) -> None:
        loop = asyncio.get_running_loop()
        eng, hub = self.engine, self.hub
        rate = self.config.rate
        self._anchor()
        waited = 0.0
        while True:
            if self._paused:
                await self._resumed.wait()
                self._anchor()
                continue
            if rate > 0:
                target = self._v0 + int((loop.time() - self._w0) * 1e6)
                msgs = eng.run(PACED_MAX_BATCH, target)
                if msgs:
                    hub.dispatch(msgs)
                    hub.flush()
                ahead = eng.vnow_us - target
                if ahead > 0:
                    await asyncio.sleep(min(ahead / 1e6, 0.05))
                else:
                    if -ahead > MAX_LAG_US:
                        self._anchor()
                    await asyncio.sleep(0)
            else:
                if hub.backlogged() and waited < BACKPRESSURE_MAX_WAIT_S:
                    await asyncio.sleep(0.001)
                    waited += 0.001
                    continue
                waited = 0.0
                hub.dispatch(eng.run(FAST_BATCH))
                hub.flush()
                await asyncio.sleep(0)

    # -- WebSocket ------------------------------------------------------------------------

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        auth = self._keys.check(request.headers)
        if not auth.ok:
            log.info("rejected WebSocket upgrade from %s: %s", request.remote, auth.reason)
            return web.Response(status=401, text=f"401 Unauthorized: {auth.reason}\n")
        ws = web.WebSocketResponse(
            autoping=False, compress=False, max_msg_size=1 << 20, timeout=2.0
        )
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="expected a WebSocket upgrade\n")
        cfg = self.config
        conn = Connection(
            self.hub.new_conn_id(),
            peer=str(request.remote),
            authenticated=auth.authenticated,
            key_id=auth.key_id,
            limit=cfg.max_queue_frames,
            write_high=cfg.write_buffer_high,
            record=cfg.record_frames,
            board=self.board,
            on_dead_sub=self.hub.on_dead_sub,
        )
        conn.ws = ws
        if conn.log is not None:
            self._logs[conn.id] = conn.log
        # Registered before the 101 goes out, so a client that has connected can already
        # find itself in connections() / sent_frames().
        self.hub.register(conn)
        self._accepted = conn.id
        self._conn_event.set()
        pong = asyncio.Event()
        try:
            await ws.prepare(request)
            conn.transport = request.transport
            conn.spawn(self._heartbeat(conn, ws, pong))
            if conn.faulty:
                conn.poll_faults(-1)
                conn.flush()
            async for msg in ws:
                if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
                    try:
                        commands.handle(self._ctx, conn, msg.data)
                    except Exception:  # a simulator bug: answer like the exchange would
                        log.exception("connection %d: command failed", conn.id)
                        conn.push(error_frame(None, 17))
                    conn.flush()
                elif msg.type is WSMsgType.PING:
                    if conn.stalled:  # answered only when the stall ends, like the frames
                        conn.held_pongs.append(msg.data)
                    else:
                        await ws.pong(msg.data)
                elif msg.type is WSMsgType.PONG:
                    pong.set()
                elif msg.type is WSMsgType.ERROR:
                    break
        except (ConnectionError, RuntimeError) as exc:
            log.debug("connection %d ended: %s", conn.id, exc)
        finally:
            self.hub.unregister(conn)
            conn.cancel_tasks()
        return ws

    async def _heartbeat(
        self, conn: Connection, ws: web.WebSocketResponse, pong: asyncio.Event
    ) -> None:
        """Ping ``heartbeat`` every interval; a ping left unanswered closes the connection."""
        interval, timeout = self.config.ping_interval_s, self.config.pong_timeout_s
        while not conn.closed and not ws.closed:
            await asyncio.sleep(interval)
            if conn.stalled or conn.closed or ws.closed:
                continue
            pong.clear()
            try:
                await ws.ping(b"heartbeat")
            except (ConnectionError, RuntimeError):
                return
            try:
                async with asyncio.timeout(timeout):
                    await pong.wait()
            except TimeoutError:
                if not conn.stalled:
                    log.info("connection %d: no pong within %.1fs, closing", conn.id, timeout)
                    conn.kill(1011)
                    return
