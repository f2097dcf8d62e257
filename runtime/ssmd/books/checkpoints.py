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

from ssmd import subjects
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
