"""The connector's order books: built from the frames as JetStream stored them, checkpointed.

A checkpoint must carry the stream sequence of the last frame it includes, which the
connector's per-frame hook does not know yet. The publisher's stored hook does: it fires
when JetStream acknowledges a record, with its stream sequence. So the keeper is fed from
there (:meth:`BookKeeper.on_stored`, registered with ``Connector.add_stored_listener``): the
hook only queues the orderbook records, and a task parses and applies them in batches. The
books are built only from what was stored, without reading the stream back.

Order. Acks arrive in the order records were published, which is the exchange's order per
(connection, sid), and normally the stream's. After a NATS outage it need not be: a record
that failed (503) can be stored after the later ones that were already in flight, and a
resent record that had been stored gets a duplicate ack with its old, lower sequence after
records stored since. Either way JetStream then holds that subscription's frames out of
exchange order (every reader of the stream will see a gap), so the keeper:

* applies records in ack order; the builder ignores duplicates (exchange seq <= last) and
  turns a seq gap into stale books;
* treats a new frame whose stream sequence is below one already applied for the same
  (conn, sid) as a break in the sid: its books go stale, never silently wrong, and a
  checkpoint never claims a frame it does not include;
* asks for fresh snapshots whenever it sees a gap the WS client did not report itself
  (the client already re-baselines the gaps it sees: one get_snapshot, not two).

Start-up is the gateway's: seed from the last checkpoints and read back the orderbook frames
stored after the oldest of them, up to where the stream ended when the keeper started; every
record acknowledged from then on comes through the stored hook (a reconnected connector's
new snapshots replace old books)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from ssmd import subjects
from ssmd.books.builder import BookBuilder
from ssmd.books.checkpoints import CheckpointPublisher, load_checkpoints
from ssmd.connector.gaps import GapRecord
from ssmd.connector.spill import Record
from ssmd.feeds.kalshi.messages import (
    FrameParseError,
    OrderbookDeltaFrame,
    OrderbookSnapshotFrame,
    parse_frame,
)

log = logging.getLogger("ssmd.books.keeper")

# (conn, sid, tickers): ask that connection for fresh snapshots.
Resync = Callable[[str, int, list[str]], None]

_MAX_REPORTED_GAPS = 10_000


class BookKeeper:
    def __init__(
        self,
        js: JetStreamContext,
        env: str,
        feed: str,
        *,
        interval: float = 1.0,
        resync: Resync | None = None,
        batch_delay: float = 0.01,
    ) -> None:
        self._js, self.env, self.feed = js, env, feed
        self._resync = resync
        self._prefix = subjects.json_type_prefix(env, feed, "orderbook")
        # Seq gaps the WS client reports are re-baselined by the client itself; the keeper
        # asks for the others (crossed/negative books, frames stored out of order).
        self.builder = BookBuilder(on_resync=self._on_resync, resync_on_gap=False)
        self.checkpoints = CheckpointPublisher(js, env, feed, self.builder, interval=interval)
        # (payload, conn, stream seq) acknowledged and not yet applied, in ack order.
        self._q: list[tuple[bytes, str, int]] = []
        self._wake = asyncio.Event()
        self._batch_delay = batch_delay
        self._task: asyncio.Task[None] | None = None
        self._catch_up: tuple[int, int] | None = None  # stream seqs to read back at start
        self._read_to = 0  # records up to this stream seq were read back
        # (conn, sid) -> the highest stream seq of its frames applied.
        self._tops: dict[tuple[str, int], int] = {}
        self._reported: set[tuple[str, int, int]] = set()  # (conn, sid, seq) the client saw
        self.last_seq = 0
        self.frames = 0
        self.errors = 0
        self.out_of_order = 0

    def _on_resync(self, conn: str, sid: int, tickers: list[str], reason: str) -> None:
        log.warning("resync %d book(s) on %s sid %d: %s", len(tickers), conn, sid, reason)
        if self._resync is not None:
            self._resync(conn, sid, tickers)

    # -- the hooks (the connector's hot path: queue only) ----------------------------------

    def on_stored(self, rec: Record, stream_seq: int) -> None:
        """``Connector.add_stored_listener``: JetStream stored ``rec`` as ``stream_seq``."""
        if rec.subject.startswith(self._prefix):
            q = self._q
            if not q:
                self._wake.set()
            q.append((rec.payload, rec.conn, stream_seq))

    def on_gap(self, gap: GapRecord) -> None:
        """``Connector.add_gap_listener``: a gap the connector saw (and resyncs itself)."""
        if gap.sid is not None and gap.received_seq is not None:
            if len(self._reported) >= _MAX_REPORTED_GAPS:
                self._reported.clear()
            self._reported.add((gap.conn, gap.sid, gap.received_seq))

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Seed from the checkpoints; call before the publisher stores anything new."""
        cps = await load_checkpoints(self._js, self.env, self.feed)
        for cp in cps:
            self.builder.seed(cp)
        if cps:
            start = min(cp.seq for cp in cps) + 1
            try:
                info = await self._js.stream_info(subjects.stream_name(self.env, self.feed))
                end = info.state.last_seq
            except NotFoundError:
                end = 0
            self._read_to = end
            if end >= start:
                self._catch_up = (start, end)
        self._task = asyncio.create_task(self._run(), name="book-keeper")
        self.checkpoints.start()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._catch_up is None:  # what was acknowledged up to the end is in the books
            self._drain()
        await self.checkpoints.stop()

    async def wait_applied(self, timeout: float = 10.0) -> bool:
        """True once every record acknowledged so far is applied (tests, benchmarks)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._q or self._catch_up is not None:
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    # -- applying -------------------------------------------------------------------------

    async def _run(self) -> None:
        if self._catch_up is not None:
            try:
                await self._read_back(*self._catch_up)
            except Exception as exc:  # the live path must go on: the new snapshots rebuild
                log.warning("reading back stored frames failed: %s", exc)
            self._catch_up = None
        while True:
            await self._wake.wait()
            # Let acks gather: one batch every few ms, not a task switch per read of acks.
            await asyncio.sleep(self._batch_delay)
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        while self._q:
            batch, self._q = self._q, []
            apply = self._apply
            read_to = self._read_to
            for data, conn, seq in batch:
                if seq > read_to:
                    try:
                        apply(data, conn, seq)
                    except Exception:  # one bad frame must not stop the books
                        self.errors += 1
                        log.exception("applying stored frame %d failed", seq)

    async def _read_back(self, start: int, end: int) -> None:
        """The orderbook frames stored in ``[start, end]``, in stream order."""
        stream = subjects.stream_name(self.env, self.feed)
        flt = self._prefix + ">"
        try:
            first = await self._js.get_msg(stream, seq=start, subject=flt, next=True)
        except NotFoundError:
            return
        if first.seq is None or first.seq > end:
            return
        sub = await self._js.subscribe(
            flt,
            stream=stream,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=first.seq
            ),
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )
        n = 0
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=5.0)
                except TimeoutError:
                    log.warning("reading back stored frames: nothing more after %d", n)
                    break
                meta = msg.metadata
                seq = meta.sequence.stream
                if seq > end:
                    break
                conn = msg.headers.get("Ssmd-Conn", "") if msg.headers else ""
                self._apply(msg.data, conn, seq)
                n += 1
                if seq >= end or meta.num_pending == 0:
                    break
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        log.info("read back %d stored orderbook frame(s) after the checkpoints", n)

    def _apply(self, data: bytes, conn: str, seq: int) -> None:
        self.frames += 1
        try:
            frame = parse_frame(data)
        except FrameParseError:
            self.errors += 1
            return
        if not isinstance(frame, OrderbookDeltaFrame | OrderbookSnapshotFrame):
            return
        if seq > self.last_seq:
            self.last_seq = seq
        b = self.builder
        key = (conn, frame.sid)
        if seq > self._tops.get(key, 0):
            self._tops[key] = seq
        else:  # stored before a frame of its sid that is already applied
            last = b.last_seq(conn, frame.sid)
            if last is not None and frame.seq > last:  # and not a duplicate
                self._out_of_order(conn, frame.sid, frame.seq, seq, self._tops[key])
        gaps = b.gaps
        b.apply(frame, seq, conn)
        if b.gaps != gaps:
            self._gap(conn, frame.sid, frame.seq)

    def _out_of_order(self, conn: str, sid: int, xseq: int, seq: int, top: int) -> None:
        """A new frame stored before frames of its sid that are already applied."""
        self.out_of_order += 1
        reason = f"sid {sid} stored out of order: seq {xseq} at stream seq {seq} < {top}"
        events = self.builder.mark_sid_stale(sid, reason, conn)
        self._on_resync(conn, sid, [e.ticker for e in events], reason)

    def _gap(self, conn: str, sid: int, xseq: int) -> None:
        key = (conn, sid, xseq)
        if key in self._reported:
            self._reported.discard(key)  # the client saw it and asked for snapshots
            return
        tickers = [e.ticker for e in self.builder.books.values() if e.sid == sid and e.conn == conn]
        self._on_resync(conn, sid, tickers, f"seq gap on sid {sid} before seq {xseq}")

    def snapshot(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for e in self.builder.books.values():
            states[e.state.value] = states.get(e.state.value, 0) + 1
        return {
            "books": states,
            "last_seq": self.last_seq,
            "queued": len(self._q),
            "checkpoints_published": self.checkpoints.published,
            "gaps": self.builder.gaps,
            "out_of_order": self.out_of_order,
            "invalid": self.builder.invalid,
        }
