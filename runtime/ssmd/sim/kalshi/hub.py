"""Fan-out: the engine's one global stream, filtered into each subscription's view.

Indexes map (channel, market) to the subscriptions that want it, plus per-channel
firehose lists, so a message costs only its actual subscribers. Each subscription adds its
own sid/seq prefix to the shared, pre-rendered tail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ssmd.sim.kalshi.engine import Msg
from ssmd.sim.kalshi.faults import Fault, FaultBoard, FaultKind
from ssmd.sim.kalshi.protocol import DATA_CHANNELS, UNFILTERED_CHANNELS
from ssmd.sim.kalshi.session import Connection, Subscription


class Hub:
    def __init__(self, board: FaultBoard) -> None:
        self.board = board
        self.conns: dict[int, Connection] = {}
        n = len(DATA_CHANNELS)
        self.firehose: list[list[Subscription]] = [[] for _ in range(n)]
        self.by_market: list[dict[int, list[Subscription]]] = [{} for _ in range(n)]
        self._next_conn = 1

    # -- connections ----------------------------------------------------------------------

    def new_conn_id(self) -> int:
        cid = self._next_conn
        self._next_conn += 1
        return cid

    def register(self, conn: Connection) -> None:
        self.conns[conn.id] = conn
        conn.faulty = bool(self.board.for_conn(conn.id))

    def unregister(self, conn: Connection) -> None:
        conn.closed = True
        for sub in list(conn.subs.values()):
            self.remove_sub(sub)
        self.conns.pop(conn.id, None)

    # -- subscriptions --------------------------------------------------------------------

    def add_sub(self, sub: Subscription) -> None:
        sub.conn.subs[sub.sid] = sub
        ch = DATA_CHANNELS.get(sub.channel)
        if ch is None:
            return  # a silent channel: acknowledged, never fed
        if sub.markets is None or sub.channel in UNFILTERED_CHANNELS:
            self.firehose[ch].append(sub)
        else:
            self.index_markets(sub, sub.markets)

    def index_markets(self, sub: Subscription, markets: Iterable[int]) -> None:
        ch = DATA_CHANNELS[sub.channel]
        idx = self.by_market[ch]
        for m in markets:
            idx.setdefault(m, []).append(sub)

    def unindex_markets(self, sub: Subscription, markets: Iterable[int]) -> None:
        ch = DATA_CHANNELS.get(sub.channel)
        if ch is None:
            return
        idx = self.by_market[ch]
        for m in markets:
            lst = idx.get(m)
            if lst is not None and sub in lst:
                # Copy on write: a dispatch loop may be iterating the old list.
                lst = [s for s in lst if s is not sub]
                if lst:
                    idx[m] = lst
                else:
                    del idx[m]

    def remove_sub(self, sub: Subscription) -> None:
        sub.dead = True
        sub.conn.subs.pop(sub.sid, None)
        ch = DATA_CHANNELS.get(sub.channel)
        if ch is None:
            return
        if sub in self.firehose[ch]:
            self.firehose[ch] = [s for s in self.firehose[ch] if s is not sub]
        if sub.markets is not None:
            self.unindex_markets(sub, sub.markets)

    def on_dead_sub(self, sub: Subscription) -> None:
        # Safe mid-dispatch: the indexes are copy-on-write, so a loop over the old list
        # finishes its current message and the next message no longer sees the sub.
        self.remove_sub(sub)

    # -- the hot path ---------------------------------------------------------------------

    def dispatch(self, msgs: list[Msg]) -> None:
        firehose = self.firehose
        by_market = self.by_market
        for ch, m, kind, tail in msgs:
            subs = by_market[ch].get(m)
            fire = firehose[ch]
            if subs is None:
                if not fire:
                    continue
                subs = fire
            elif fire:
                subs = subs + fire
            for sub in subs:
                conn = sub.conn
                sub.seq += 1
                if kind <= 1:
                    frame = b"%b%d%b" % (sub.pre[kind], sub.seq, tail)
                else:
                    frame = sub.pre[kind] + tail
                if conn.faulty:
                    conn.push_data(sub, kind, frame)
                elif len(conn.out) < conn.limit:
                    conn.out.append(frame)
                else:
                    conn.overflow(sub)

    def flush(self) -> None:
        for conn in self.conns.values():
            if conn.out:
                conn.flush()

    def backlogged(self) -> bool:
        return any(c.backlogged() for c in self.conns.values())

    # -- faults ---------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        self.board.add(fault, {cid: c.pushed() for cid, c in self.conns.items()})
        if fault.kind is FaultKind.REST_429:
            return
        for conn in list(self.conns.values()):
            conn.faulty = bool(self.board.for_conn(conn.id))
            if conn.faulty:
                conn.poll_faults(-1)
        self.flush()

    def clear_faults(self) -> None:
        self.board.clear()
        for conn in self.conns.values():
            conn.faulty = conn.held is not None  # a held frame still goes out after the next
            conn.unstall()

    def describe(self, ticker_of: Callable[[int], str]) -> list[dict[str, Any]]:
        return [c.describe(ticker_of) for c in sorted(self.conns.values(), key=lambda c: c.id)]
