"""One client connection: its subscriptions, its bounded output queue, its faults.

Frames wait in ``Connection.out`` until ``flush`` writes them in one batch straight to the
socket. The queue is bounded: a frame that does not fit drops the subscription it belongs
to with error 25, as Kalshi does with a slow consumer. A paced engine never waits for a
client; with rate=0 ("as fast as possible") it waits briefly for full sockets to drain.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from ssmd.sim.kalshi.faults import SUB_ERROR_CODES, ActiveFault, FaultBoard, FaultKind
from ssmd.sim.kalshi.protocol import ERRORS, FRAME_TYPES, K_DELTA, SEQ_CHANNELS
from ssmd.sim.kalshi.wire import ws_text_frames

if TYPE_CHECKING:
    from aiohttp import web

MALFORMED_FRAME = b'{"type":"orderbook_delta","sid":1,"seq":'  # cut short: not JSON
UNKNOWN_TYPE_FRAME = b'{"type":"sim_unknown_type","msg":{"note":"injected by the simulator"}}'


class Subscription:
    """A channel subscription. ``markets`` is None for every market (firehose)."""

    __slots__ = (
        "by_id",
        "channel",
        "conn",
        "dead",
        "markets",
        "pre",
        "send_initial",
        "seq",
        "sid",
        "skip_ack",
    )

    def __init__(
        self,
        conn: Connection,
        sid: int,
        channel: str,
        markets: list[int] | None,
        *,
        by_id: bool = False,
        skip_ack: bool = False,
        send_initial: bool = False,
    ) -> None:
        self.conn = conn
        self.sid = sid
        self.channel = channel
        self.markets: dict[int, None] | None = None if markets is None else dict.fromkeys(markets)
        self.by_id = by_id
        self.skip_ack = skip_ack
        self.send_initial = send_initial
        self.seq = 0  # last seq used (seq'd kinds), or frames sent (the others)
        self.dead = False
        # The frame up to its variable part, per kind: seq'd kinds continue with the seq.
        self.pre = tuple(
            (b'{"type":"%s","sid":%d,"seq":' if k <= 1 else b'{"type":"%s","sid":%d,"msg":')
            % (t.encode(), sid)
            for k, t in enumerate(FRAME_TYPES)
        )

    @property
    def has_seq(self) -> bool:
        return self.channel in SEQ_CHANNELS

    def frame(self, kind: int, tail: bytes) -> bytes:
        self.seq += 1
        if kind <= 1:
            return b"%b%d%b" % (self.pre[kind], self.seq, tail)
        return self.pre[kind] + tail


def response(cmd_id: int | None, body: dict[str, Any]) -> bytes:
    """A command response; ``id`` leads, and is left out when the command had none (or 0)."""
    return orjson.dumps({"id": cmd_id, **body} if cmd_id else body)


def error_frame(cmd_id: int | None, code: int, **extra: str) -> bytes:
    return response(cmd_id, {"type": "error", "msg": {"code": code, "msg": ERRORS[code], **extra}})


class Connection:
    def __init__(
        self,
        cid: int,
        *,
        peer: str,
        authenticated: bool,
        key_id: str | None,
        limit: int,
        write_high: int,
        record: bool,
        board: FaultBoard,
        on_dead_sub: Callable[[Subscription], None],
    ) -> None:
        self.id = cid
        self.peer = peer
        self.authenticated = authenticated
        self.key_id = key_id
        self.connected_at = time.time()
        self.limit = limit
        self.write_high = write_high
        self.board = board
        self._on_dead_sub = on_dead_sub
        self.subs: dict[int, Subscription] = {}
        self.next_sid = 1
        self.out: list[bytes] = []
        self.flushed = 0  # frames handed to the socket
        self.log: list[bytes] | None = [] if record else None
        self.ws: web.WebSocketResponse | None = None
        self.transport: asyncio.Transport | None = None
        self.stalled = False
        self.closed = False
        self.faulty = False  # a pending fault may fire here: take the slow push path
        self.held: bytes | None = None  # a frame held back by a reorder fault
        self.held_pongs: list[bytes] = []  # pings that arrived during a stall
        self.overflows = 0
        self._drainer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.cmd_times: list[float] = []

    # -- queueing -------------------------------------------------------------------------

    def pushed(self) -> int:
        return self.flushed + len(self.out)

    def push(self, frame: bytes) -> None:
        """A command response or an injected frame: never dropped by the queue bound."""
        if self.closed:
            return
        self.out.append(frame)
        if self.faulty:
            self.poll_faults(-1)

    def push_data(self, sub: Subscription, kind: int, frame: bytes) -> None:
        """The slow path of fan-out, taken when faults are pending on this connection."""
        if self.closed or sub.dead:
            return
        drop, dup, hold = self.poll_faults(kind)
        if drop:
            return
        if len(self.out) >= self.limit:
            self.overflow(sub)
            return
        if hold:
            self.held = frame  # goes out after the next data frame
            self.faulty = True
            return
        self.out.append(frame)
        if dup:
            self.out.append(frame)
        if self.held is not None:
            self.out.append(self.held)
            self.held = None
            self.faulty = bool(self.board.for_conn(self.id))

    def overflow(self, sub: Subscription) -> None:
        if sub.dead:
            return
        self.overflows += 1
        self.drop_sub(sub, 25)

    def drop_sub(self, sub: Subscription, code: int) -> None:
        """Terminal subscription error (10, 17, 25): tell the client, forget the sid."""
        if sub.dead:
            return
        sub.dead = True
        self.out.append(
            orjson.dumps(
                {"type": "error", "sid": sub.sid, "msg": {"code": code, "msg": ERRORS[code]}}
            )
        )
        self._on_dead_sub(sub)

    # -- writing --------------------------------------------------------------------------

    def flush(self) -> None:
        if not self.out or self.stalled or self.closed:
            return
        t = self.transport
        if t is None or t.is_closing():
            return
        if self.ws is not None and self.ws.closed:
            # A close frame has gone out: nothing may follow it.
            self.closed = True
            return
        if t.get_write_buffer_size() > self.write_high:
            self._start_drainer()
            return
        frames = self.out
        self.out = []
        self.flushed += len(frames)
        if self.log is not None:
            self.log.extend(frames)
        t.write(ws_text_frames(frames))

    def backlogged(self) -> bool:
        if self.stalled or self.closed:
            return False
        t = self.transport
        return bool(self.out) or (t is not None and t.get_write_buffer_size() > self.write_high)

    def _start_drainer(self) -> None:
        if self._drainer is None or self._drainer.done():
            self._drainer = self.spawn(self._drain())

    async def _drain(self) -> None:
        # The socket's buffer is full: poll until it empties. Only slow clients pay this.
        while self.out and not self.closed and not self.stalled:
            await asyncio.sleep(0.002)
            t = self.transport
            if t is None or t.is_closing():
                return
            if t.get_write_buffer_size() <= self.write_high // 2:
                self.flush()

    def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- faults ---------------------------------------------------------------------------

    def poll_faults(self, kind: int) -> tuple[bool, bool, bool]:
        """Fire the faults that are due here. ``kind`` is the frame about to be queued
        (-1: none, or a response). Returns (drop this frame, send it twice, hold it back)."""
        drop = dup = hold = False
        pushed = self.pushed()
        for af in self.board.for_conn(self.id):
            if not af.due(self.id, pushed) or self.closed:
                continue
            k = af.fault.kind
            if k is FaultKind.SKIP_SEQ:
                if kind != K_DELTA or drop:
                    continue
                drop = True
            elif k is FaultKind.DUPLICATE:
                if kind < 0 or dup:
                    continue
                dup = True
            elif k is FaultKind.REORDER:
                if kind < 0 or hold or self.held is not None:
                    continue
                hold = True
            elif k in SUB_ERROR_CODES:
                if not self._fire_sub_error(af):
                    continue
            else:
                self._fire(af)
            self.board.consume(af)
        self.faulty = bool(self.board.for_conn(self.id)) or hold or self.held is not None
        return drop, dup, hold

    def _fire_sub_error(self, af: ActiveFault) -> bool:
        live = [s for s in self.subs.values() if not s.dead]
        if af.fault.sid is not None:
            live = [s for s in live if s.sid == af.fault.sid]
        if not live:
            return False  # waits until this connection has a subscription
        live.sort(key=lambda s: (s.channel != "orderbook_delta", s.sid))
        self.drop_sub(live[0], SUB_ERROR_CODES[af.fault.kind])
        return True

    def _fire(self, af: ActiveFault) -> None:
        k = af.fault.kind
        if k is FaultKind.MALFORMED:
            self.out.append(MALFORMED_FRAME)
        elif k is FaultKind.UNKNOWN_TYPE:
            self.out.append(UNKNOWN_TYPE_FRAME)
        elif k is FaultKind.STALL:
            self.stalled = True
        elif k is FaultKind.CLOSE:
            self.kill(af.fault.code)

    def kill(self, code: int | None = None) -> None:
        """Drop the connection: abruptly (no close frame) or with a close frame ``code``."""
        if self.closed:
            return
        if code is None:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
            return
        self.flush()
        self.closed = True
        if self.ws is not None:
            self.spawn(self.ws.close(code=code, message=b"closed by the simulator"))

    def unstall(self) -> None:
        if self.stalled:
            self.stalled = False
            self.flush()
            pongs, self.held_pongs = self.held_pongs, []
            if self.ws is not None and not self.ws.closed:
                for data in pongs:
                    self.spawn(self.ws.pong(data))

    # -- introspection --------------------------------------------------------------------

    def describe(self, ticker_of: Callable[[int], str]) -> dict[str, Any]:
        return {
            "conn": self.id,
            "peer": self.peer,
            "authenticated": self.authenticated,
            "key_id": self.key_id,
            "connected_at": self.connected_at,
            "stalled": self.stalled,
            "closed": self.closed,
            "queued": len(self.out),
            "frames_sent": self.flushed,
            "overflows": self.overflows,
            "subscriptions": [
                {
                    "sid": s.sid,
                    "channel": s.channel,
                    "markets": None if s.markets is None else [ticker_of(m) for m in s.markets],
                    "seq": s.seq if s.has_seq else None,
                }
                for s in sorted(self.subs.values(), key=lambda s: s.sid)
            ],
        }
