"""The throttled publisher of book checkpoints to ``{env}.{feed}.book.{ticker}``.

Every ``interval`` seconds it publishes each book that changed since its last checkpoint
(so at most one checkpoint per market per interval), carrying the JetStream sequence of the
last frame the book includes. Books that never had a snapshot are never published; stale
books are published with ``stale: true`` so a late consumer knows not to trust them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from ssmd import subjects
from ssmd.books.book import Checkpoint, CheckpointError
from ssmd.books.builder import BookBuilder, BookState

log = logging.getLogger("ssmd.books.checkpoints")

_BATCH = 256  # acks awaited together: bounded in flight, never one round trip per book


class CheckpointPublisher:
    def __init__(
        self,
        js: JetStreamContext,
        env: str,
        feed: str,
        builder: BookBuilder,
        *,
        interval: float = 1.0,
    ) -> None:
        self._js, self._env, self._feed, self._builder = js, env, feed, builder
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.failed = 0

    async def flush(self) -> int:
        """Publish every changed book now; returns how many were published."""
        due = [
            e
            for e in self._builder.books.values()
            if e.dirty and e.state is not BookState.PENDING and e.stream_seq > 0
        ]
        n = 0
        for i in range(0, len(due), _BATCH):
            chunk = due[i : i + _BATCH]
            now = time.time_ns()
            payloads = []
            for e in chunk:
                e.dirty = False  # cleared before the await: a change meanwhile re-marks it
                payloads.append(
                    (subjects.book_subject(self._env, self._feed, e.ticker), e.checkpoint(now))
                )
            results = await asyncio.gather(
                *(self._js.publish(s, cp.to_json()) for s, cp in payloads), return_exceptions=True
            )
            for e, r in zip(chunk, results, strict=True):
                if isinstance(r, BaseException):
                    e.dirty = True  # retried at the next tick
                    self.failed += 1
                    log.warning("checkpoint for %s not stored: %s", e.ticker, r)
                else:
                    n += 1
        self.published += n
        return n

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception as exc:  # a checkpoint must never stop the data path
                log.warning("checkpoint flush failed: %s", exc)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="book-checkpoints")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()


async def load_checkpoints(js: JetStreamContext, env: str, feed: str) -> list[Checkpoint]:
    """The latest checkpoint of every market in ``{ENV}_{FEED}_BOOKS`` (unreadable ones skipped)."""
    stream = subjects.books_stream_name(env, feed)
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return []
    if not info.state.messages:
        return []
    sub = await js.subscribe(
        subjects.book_wildcard(env, feed),
        stream=stream,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
    )
    out: list[Checkpoint] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except TimeoutError:
                break
            try:
                out.append(Checkpoint.from_json(msg.data))
            except CheckpointError as exc:
                log.warning("checkpoint on %s skipped: %s", msg.subject, exc)
            if msg.metadata.num_pending == 0:
                break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return out
