"""The connector's order books: built from the frames as stored in JetStream, checkpointed.

The connector's per-frame hook runs before JetStream has acknowledged (and numbered) the
frame, but a checkpoint must carry the stream sequence of the last frame it includes. So
the keeper reads the connector's own orderbook frames back with an ordered consumer: every
frame comes with its sequence, and a book is only ever built from what was stored.

Start-up is the gateway's: seed from the last checkpoints, then follow from the oldest
checkpoint's sequence + 1 (a reconnected connector's new snapshots replace old books)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from ssmd import subjects
from ssmd.books.builder import BookBuilder
from ssmd.books.checkpoints import CheckpointPublisher, load_checkpoints
from ssmd.feeds.kalshi.messages import (
    FrameParseError,
    OrderbookDeltaFrame,
    OrderbookSnapshotFrame,
    parse_frame,
)

log = logging.getLogger("ssmd.books.keeper")

# (conn, sid, tickers): ask that connection for fresh snapshots.
Resync = Callable[[str, int, list[str]], None]


class BookKeeper:
    def __init__(
        self,
        js: JetStreamContext,
        env: str,
        feed: str,
        *,
        interval: float = 1.0,
        resync: Resync | None = None,
    ) -> None:
        self._js, self.env, self.feed = js, env, feed
        self._resync = resync
        # Seq gaps are re-baselined by the WS client itself; the keeper asks only when a
        # book crosses or goes negative.
        self.builder = BookBuilder(on_resync=self._on_resync, resync_on_gap=False)
        self.checkpoints = CheckpointPublisher(js, env, feed, self.builder, interval=interval)
        self._sub: Any = None
        self.last_seq = 0
        self.frames = 0
        self.errors = 0

    def _on_resync(self, conn: str, sid: int, tickers: list[str], reason: str) -> None:
        log.warning("resync %d book(s) on %s sid %d: %s", len(tickers), conn, sid, reason)
        if self._resync is not None:
            self._resync(conn, sid, tickers)

    async def start(self) -> None:
        cps = await load_checkpoints(self._js, self.env, self.feed)
        for cp in cps:
            self.builder.seed(cp)
        start = min((cp.seq for cp in cps), default=0) + 1
        self._sub = await self._js.subscribe(
            f"{self.env}.{self.feed}.json.orderbook.>",
            stream=subjects.stream_name(self.env, self.feed),
            cb=self._on_msg,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE if cps else DeliverPolicy.ALL,
                opt_start_seq=start if cps else None,
            ),
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )
        self.checkpoints.start()

    async def _on_msg(self, msg: Msg) -> None:
        seq = msg.metadata.sequence.stream
        self.last_seq = seq
        self.frames += 1
        try:
            frame = parse_frame(msg.data)
        except FrameParseError:
            self.errors += 1
            return
        if isinstance(frame, OrderbookSnapshotFrame | OrderbookDeltaFrame):
            conn = msg.headers.get("Ssmd-Conn", "") if msg.headers else ""
            self.builder.apply(frame, seq, conn)

    def snapshot(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for e in self.builder.books.values():
            states[e.state.value] = states.get(e.state.value, 0) + 1
        return {
            "books": states,
            "last_seq": self.last_seq,
            "checkpoints_published": self.checkpoints.published,
            "gaps": self.builder.gaps,
            "invalid": self.builder.invalid,
        }

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        await self.checkpoints.stop()
