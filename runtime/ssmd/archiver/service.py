"""The archiver component: JetStream → rotated archive files + day manifests, local or S3.

Guarantees (see ``manifest`` for the format):

* a message is acknowledged only after the file holding it is fsynced (AckAll, one per sync);
* at start, files left by a crash are repaired (torn last frame cut off) and closed, and the
  consumer is positioned after the highest sequence on disk, so every stream sequence is in
  the files exactly once;
* sequences missing from the stream are recorded as ``stream`` gaps in the manifest *before*
  the data after them becomes durable, and connector gap records as ``exchange`` gaps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from ssmd import subjects
from ssmd.archiver.consumer import Delivery, PullConsumer, ensure_consumer
from ssmd.archiver.manifest import (
    EXTENSIONS,
    MANIFEST,
    PARTIAL,
    Codec,
    DayManifest,
    Format,
    LineEncoder,
    SubjectClassifier,
    date_of_ns,
    day_dir,
    file_stem,
    is_archive_file,
    is_date,
    is_partial,
    read_manifest,
    window_start_ns,
    write_manifest,
)
from ssmd.archiver.metrics import archiver_metrics
from ssmd.archiver.storage import LocalStore, S3Store, StorageError, store_for
from ssmd.archiver.writer import ArchiveFile, ArchiveWriteError, discard, entry_for, scan_file
from ssmd.runtime import RuntimeContext
from ssmd.spec.types import duration_seconds
from ssmd.transport.connect import connect
from ssmd.transport.kv import StatusReporter
from ssmd.transport.streams import ensure_streams

log = logging.getLogger("ssmd.archiver")

RECV_HEADER = "Ssmd-Recv-Ns"
RECV_MARK = b"\r\nSsmd-Recv-Ns:"
IDLE_SYNC = 0.02
_DAY_NS = 86_400_000_000_000


INVENTORY_DAYS = 30


def _day_summary(m: DayManifest) -> dict[str, Any]:
    gaps = len(m.gaps.get("stream", [])) + len(m.gaps.get("exchange", []))
    return {
        "date": m.date,
        "records": m.records,
        "bytes": m.bytes,
        "files": len(m.files),
        "gaps": gaps,
    }


@dataclass
class ArchiverOptions:
    """Tuning knobs (not in the Environment: defaults fit every deployment we know)."""

    batch: int = 2000
    max_in_flight: int = 8000
    max_ack_pending: int = 200_000
    pull_expires: float = 5.0  # a pull request lives this long on the server
    ack_wait: float = 60.0
    sync_records: int = 50_000  # sync early when this many records are unacked
    flush_bytes: int = 4 << 20  # one compressed frame at most this big (memory bound)
    upload_retry: float = 1.0  # first retry delay; doubles up to upload_retry_max
    upload_retry_max: float = 30.0
    stop_upload_timeout: float = 10.0


class Archiver:
    """``Component`` for ``ssmd up`` and ``ssmd archiver``: build from a RuntimeContext."""

    name = "archiver"

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        now: Callable[[], float] = time.time,
        options: ArchiverOptions | None = None,
        work_root: Path | None = None,
    ) -> None:
        self.ctx = ctx
        spec = ctx.env.spec
        self.env_name = ctx.name
        self.feed = ctx.feed
        self.opts = options or ArchiverOptions()
        self._now = now
        a = spec.archiver
        self.fmt: Format = a.format
        self.codec = Codec(a.format, a.compression_level)
        self.rotation_interval = a.rotation_interval
        self.interval_ns = int(duration_seconds(a.rotation_interval) * 1e9)
        if self.interval_ns <= 0 or _DAY_NS % self.interval_ns:
            raise ValueError(
                f"spec.archiver.rotationInterval {a.rotation_interval} must divide a day "
                "(e.g. 5m, 15m, 1h)"
            )
        self.fsync_interval = max(duration_seconds(a.fsync_interval), 0.0)
        self.store = store_for(ctx.env)
        if isinstance(self.store, LocalStore):
            self.root = self.store.root
        else:  # S3: files are staged here until uploaded and verified
            self.root = work_root or (ctx.data_dir / "archiver-staging" / self.env_name)
        self.stream = subjects.stream_name(self.env_name, self.feed)
        self.durable = subjects.archiver_consumer(self.env_name, self.feed)
        self.metrics = archiver_metrics()
        self._labels = {"env": self.env_name, "feed": self.feed}
        self._m_bytes = self.metrics.bytes_written.labels(**self._labels)
        self._m_records = self.metrics.records_written.labels(**self._labels)
        self._m_files = self.metrics.files_written.labels(**self._labels)
        self._m_lag = self.metrics.consumer_lag.labels(**self._labels)

        self.nc: Client | None = None
        self.consumer: PullConsumer | None = None
        self._encoder = LineEncoder()
        self._classify = SubjectClassifier()
        self._manifests: dict[str, DayManifest] = {}
        self._inventory: dict[str, dict[str, Any]] = {}
        self._dirty_days: set[str] = set()
        self.file: ArchiveFile | None = None
        self._file_date = ""
        self._file_window_end = 0
        self.last_seq = 0  # highest stream sequence seen and handled (written or skipped)
        self._last_recv_ns = 0
        self._last_reply: bytes | None = None
        self._unacked = 0
        self._last_sync = time.monotonic()
        self.records_written = 0
        self.files_written = 0
        self.duplicates_skipped = 0
        self._dup_reply: bytes | None = None
        self._dups_reported = 0
        self.lag = 0
        self.last_closed_file: str | None = None
        self.acked_seq = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._progress = asyncio.Condition()
        self._status: StatusReporter | None = None
        self._uploader: Uploader | None = None
        self.error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if isinstance(self.store, S3Store):
            self._uploader = Uploader(self)
            await self._fetch_remote_manifest_if_missing()
        resume = self.recover()
        self._seed_inventory()
        self.nc = await connect(self.ctx.nats_url, name=f"ssmd-archiver-{self.env_name}")
        js = self.nc.jetstream()
        await ensure_streams(js, self.ctx.env)  # idempotent; the connector may not be up yet
        self.last_seq, reused = await ensure_consumer(
            js,
            self.stream,
            self.durable,
            resume_after=resume,
            ack_wait=self.opts.ack_wait,
            max_ack_pending=self.opts.max_ack_pending,
        )
        self.last_seq = max(self.last_seq, resume)
        self.acked_seq = self.last_seq
        log.info(
            "archiver %s/%s: %s consumer, resuming after stream seq %d, files under %s",
            self.env_name,
            self.feed,
            "reusing" if reused else "positioned",
            self.last_seq,
            self.root,
        )
        self.consumer = PullConsumer(
            self.nc,
            self.stream,
            self.durable,
            batch=self.opts.batch,
            max_in_flight=self.opts.max_in_flight,
            expires=self.opts.pull_expires,
        )
        await self.consumer.start()
        if self._uploader is not None:
            self._uploader.start()
        self._status = StatusReporter(
            js,
            self.env_name,
            self.name,
            self.status_snapshot,
            source=self.ctx.source,
            interval=self.ctx.status_interval,
        )
        self._status.start()
        self._task = asyncio.create_task(self._run(), name=f"archiver-{self.feed}")

    async def stop(self) -> None:
        """Graceful: close the current file, update the manifest, ack, upload, exit."""
        self._stopping.set()
        if self.consumer is not None:
            self.consumer.wake()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.consumer is not None:
            await self.consumer.stop()
        if self._uploader is not None:
            await self._uploader.stop(self.opts.stop_upload_timeout)
        if self._status is not None:
            await self._status.stop()  # writes the final state: file closed, last seq
            self._status = None
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()
            self.nc = None
        await self.store.close()

    async def wait_until_acked(self, seq: int) -> None:
        """Wait until every stream sequence up to ``seq`` is durable and acked (tests)."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.acked_seq >= seq or self.error is not None)
        if self.error is not None:
            raise self.error

    async def wait_uploads(self) -> None:
        if self._uploader is not None:
            await self._uploader.wait_idle()

    # ------------------------------------------------------------------ main loop

    async def _run(self) -> None:
        assert self.consumer is not None
        try:
            while not self._stopping.is_set():
                msgs = await self.consumer.take(self._wait_timeout())
                rotated = self._process(msgs) if msgs else False
                if not msgs and self._clock_rotation_due():
                    self._close_file()
                    rotated = True
                if (
                    rotated
                    or (not msgs and self._unacked)  # caught up: make it durable now
                    or self._unacked >= self.opts.sync_records
                    or time.monotonic() - self._last_sync >= self.fsync_interval
                ):
                    await self._sync()
            # graceful stop: whatever arrived is written, then everything is closed and acked
            msgs = await self.consumer.take(0)
            if msgs:
                self._process(msgs)
            self._close_file()
            await self._sync()
        except BaseException as exc:
            self.error = exc
            log.error("archiver %s/%s stopped: %s", self.env_name, self.feed, exc)
            if self.file is not None:
                self.file.abandon()  # recovered at the next start
                self.file = None
            async with self._progress:
                self._progress.notify_all()
            if not isinstance(exc, asyncio.CancelledError | ArchiveWriteError):
                raise

    def _wait_timeout(self) -> float:
        t = self.fsync_interval if self.fsync_interval > 0 else 1.0
        if self._unacked:
            # Quiet for a moment with unacked data: sync now rather than at the interval, so
            # a drained stream is acked promptly (a busy one syncs every fsync_interval).
            t = min(t, IDLE_SYNC)
        if self.file is not None:
            left = (self._file_window_end - self._now_ns()) / 1e9
            t = min(t, max(left, 0.0))
        return max(t, 0.001)

    def _now_ns(self) -> int:
        return int(self._now() * 1e9)

    def _clock_rotation_due(self) -> bool:
        # An idle feed still gets its file closed when the window is over. Only when caught up
        # (server reports nothing pending): during a backlog, receive times decide rotation.
        return self.file is not None and self.lag == 0 and self._now_ns() >= self._file_window_end

    def _process(self, msgs: list[Delivery]) -> bool:
        """Write a batch of deliveries. Returns True when a file was closed (needs an ack)."""
        rotated = False
        last_seq = self.last_seq
        classify = self._classify
        encode = self._encoder.encode
        records = 0
        pending = b""
        for subject_b, reply, frame, hdrs in msgs:
            t = reply.split(b".")
            b = 2 if len(t) == 9 else 4
            seq = int(t[b + 3])
            if seq <= last_seq:
                self.duplicates_skipped += 1  # redelivery of something already written
                if seq <= self.acked_seq:
                    self._dup_reply = reply  # acking it again is harmless and stops redelivery
                continue
            recv_ns = 0
            if hdrs:
                i = hdrs.find(RECV_MARK)
                if i >= 0:
                    j = hdrs.find(b"\r", i + len(RECV_MARK))
                    try:
                        recv_ns = int(hdrs[i + len(RECV_MARK) : j])
                    except ValueError:
                        recv_ns = 0
            if not recv_ns:
                recv_ns = int(t[b + 5])  # the JetStream timestamp
            info = classify(subject_b)
            if info.archived and (self.file is None or recv_ns >= self._file_window_end):
                if self.file is not None:
                    self._close_file()
                    rotated = True
                self._open_file(recv_ns)
            if seq != last_seq + 1:
                self._stream_gap(last_seq + 1, seq - 1, recv_ns)
            last_seq = seq
            pending = t[b + 6]
            self._last_reply = reply
            self._last_recv_ns = recv_ns
            self._unacked += 1
            if not info.archived:
                continue  # e.g. meta.> events share the stream but are not archive data
            f = self.file
            assert f is not None
            line, spliced = encode(seq, recv_ns, info.subject, frame)
            if f.append(line, seq, recv_ns, info, frame, invalid=not spliced):
                self._flush()
            records += 1
        self.last_seq = last_seq
        self.records_written += records
        self._m_records.inc(records)
        if pending:
            self.lag = int(pending)
            self._m_lag.set(self.lag)
        return rotated

    # ------------------------------------------------------------------ files

    def manifest_for(self, date: str) -> DayManifest:
        m = self._manifests.get(date)
        if m is None:
            m = read_manifest(day_dir(self.root, self.feed, date) / MANIFEST) or self._new_manifest(
                date
            )
            # only the current and previous day stay in memory
            if len(self._manifests) >= 2:
                for d in sorted(self._manifests)[:-1]:
                    if d not in self._dirty_days:
                        del self._manifests[d]
            self._manifests[date] = m
        return m

    def _new_manifest(self, date: str) -> DayManifest:
        return DayManifest(
            feed=self.feed,
            date=date,
            env=self.env_name,
            format=EXTENSIONS[self.fmt].lstrip("."),
            compression=self.fmt,
            rotation_interval=self.rotation_interval,
            source=self.ctx.source,
        )

    def _unique_name(self, directory: Path, stem: str, manifest: DayManifest) -> str:
        taken = manifest.file_names()
        n = 0
        while True:
            name = f"{stem}{'' if n == 0 else f'-{n}'}{EXTENSIONS[self.fmt]}"
            if (
                name not in taken
                and not (directory / name).exists()
                and not (directory / (name + PARTIAL)).exists()
            ):
                return name
            n += 1

    def _open_file(self, recv_ns: int) -> None:
        window = window_start_ns(recv_ns, self.interval_ns)
        date = date_of_ns(window)
        m = self.manifest_for(date)
        directory = day_dir(self.root, self.feed, date)
        name = self._unique_name(directory, file_stem(window), m)
        self.file = ArchiveFile(directory / name, self.codec, flush_bytes=self.opts.flush_bytes)
        self._file_date = date
        self._file_window_end = window + self.interval_ns

    def _flush(self) -> None:
        f = self.file
        if f is None:
            return
        before = f.bytes_written
        f.flush()
        self._m_bytes.inc(f.bytes_written - before)

    def _close_file(self) -> None:
        f = self.file
        if f is None:
            return
        before = f.bytes_written
        self._write_dirty_manifests()  # gaps found before this data must be on disk first
        entry = f.close()
        self._m_bytes.inc(f.bytes_written - before)
        self.file = None
        m = self.manifest_for(self._file_date)
        m.add_file(entry, f.stats)
        # redeliveries skipped since the last close (a data-quality signal, see `ssmd data quality`)
        m.duplicates_skipped += self.duplicates_skipped - self._dups_reported
        self._dups_reported = self.duplicates_skipped
        write_manifest(day_dir(self.root, self.feed, self._file_date) / MANIFEST, m)
        self.files_written += 1
        self._m_files.inc()
        self.last_closed_file = f"{self._file_date}/{entry.name}"
        if self._uploader is not None:
            self._uploader.enqueue(self._file_date, entry.name)

    def _stream_gap(self, first: int, last: int, recv_ns: int) -> None:
        if last < first:
            return
        date = self._file_date if self.file is not None else date_of_ns(recv_ns)
        m = self.manifest_for(date)
        gap = {
            "from_seq": first,
            "to_seq": last,
            "count": last - first + 1,
            "after_recv_ns": self._last_recv_ns or None,
            "before_recv_ns": recv_ns,
            "cause": "missing_from_stream",
        }
        if m.add_stream_gap(gap):
            self._dirty_days.add(date)
            self.metrics.stream_gaps.labels(**self._labels).inc(last - first + 1)
            log.warning(
                "stream %s: sequences %d..%d were gone before the archiver read them (%d messages)",
                self.stream,
                first,
                last,
                gap["count"],
            )

    def _write_dirty_manifests(self) -> None:
        for date in sorted(self._dirty_days):
            write_manifest(day_dir(self.root, self.feed, date) / MANIFEST, self.manifest_for(date))
        self._dirty_days.clear()

    async def _sync(self) -> None:
        """Make everything handled so far durable, then ack it with one AckAll."""
        self._write_dirty_manifests()
        f = self.file
        if f is not None and f.buffered:
            self._flush()
        if f is not None:
            f.sync()
        self._last_sync = time.monotonic()
        reply = self._last_reply or self._dup_reply
        if reply is not None and self.consumer is not None:
            await self.consumer.ack(reply)
        self._last_reply = self._dup_reply = None
        self._unacked = 0
        if self.last_seq != self.acked_seq:
            self.acked_seq = self.last_seq
            async with self._progress:
                self._progress.notify_all()

    # ------------------------------------------------------------------ recovery

    def recover(self) -> int:
        """Finish what a previous run left: repair and close ``*.partial`` files, add closed
        files missing from their manifest. Returns the highest stream sequence on disk."""
        feed_dir = self.root / self.feed
        resume = 0
        if not feed_dir.is_dir():
            return 0
        for d in sorted(p for p in feed_dir.iterdir() if p.is_dir() and is_date(p.name)):
            m = read_manifest(d / MANIFEST) or self._new_manifest(d.name)
            changed = False
            known = m.file_names()
            for p in sorted(d.iterdir()):
                if is_partial(p.name):
                    rec = scan_file(p, repair=True)
                    if rec.stats.records == 0:
                        log.info("discarding %s: no complete data", p)
                        discard(p)
                        continue
                    name = p.name.removesuffix(PARTIAL)
                    if name in m.file_names() or (d / name).exists():
                        name = self._unique_name(d, name.split(".")[0], m)
                    final = d / name
                    p.rename(final)
                    log.info(
                        "recovered %s as %s: %d records (%d torn bytes cut)",
                        p.name,
                        name,
                        rec.stats.records,
                        rec.truncated_bytes,
                    )
                    m.add_file(entry_for(name, rec.stats, rec.size, rec.sha256), rec.stats)
                    changed = True
                elif is_archive_file(p.name) and p.name not in known:
                    rec = scan_file(p, repair=False)
                    m.add_file(entry_for(p.name, rec.stats, rec.size, rec.sha256), rec.stats)
                    changed = True
            if changed:
                write_manifest(d / MANIFEST, m)
            if m.files:
                resume = max(resume, m.max_seq)
                if self._uploader is not None:
                    for f in m.files:
                        if (d / f.name).exists():
                            self._uploader.enqueue(d.name, f.name)
        return resume

    async def _fetch_remote_manifest_if_missing(self) -> None:
        """A fresh staging directory (new pod) learns where the archive ends from S3."""
        assert isinstance(self.store, S3Store)
        feed_dir = self.root / self.feed
        if feed_dir.is_dir() and any(feed_dir.glob(f"*/{MANIFEST}")):
            return
        try:
            dates = await self.store.list_dates(self.feed)
            for date in reversed(dates):
                m = await self.store.read_manifest(self.feed, date)
                if m is not None and m.files:
                    d = day_dir(self.root, self.feed, date)
                    d.mkdir(parents=True, exist_ok=True)
                    write_manifest(d / MANIFEST, m)
                    return
        except StorageError as exc:
            # Refuse to guess: starting from 0 would write duplicates of archived data.
            raise StorageError(
                f"cannot read the archive's last manifest from {self.store.description}: {exc}"
            ) from None

    # ------------------------------------------------------------------ status

    def _seed_inventory(self) -> None:
        """Day summaries of the last 30 days from the manifests on disk, read once at start
        (the operator's registry shows them; later days are kept current from memory)."""
        feed_dir = self.root / self.feed
        days = sorted(p.name for p in feed_dir.iterdir() if p.is_dir()) if feed_dir.is_dir() else []
        for date in days[-INVENTORY_DAYS:]:
            m = read_manifest(day_dir(self.root, self.feed, date) / MANIFEST)
            if m is not None:
                self._inventory[date] = _day_summary(m)

    def inventory(self) -> list[dict[str, Any]]:
        for date, m in self._manifests.items():
            self._inventory[date] = _day_summary(m)
        for old in sorted(self._inventory)[:-INVENTORY_DAYS]:
            del self._inventory[old]
        return [self._inventory[d] for d in sorted(self._inventory, reverse=True)]

    def status_snapshot(self) -> dict[str, Any]:
        return {
            # For an ordered teardown: every frame the stream holds is written (a SIGTERM then
            # closes and renames the current file), and whether a file is open right now.
            "caught_up": self.lag == 0 and self.error is None,
            "open_files": 0 if self.file is None else 1,
            "inventory": self.inventory(),
            "feed": self.feed,
            "stream": self.stream,
            "storage": self.store.description,
            "current_file": (
                f"{self._file_date}/{self.file.path.name}" if self.file is not None else None
            ),
            "last_closed_file": self.last_closed_file,
            "lag": self.lag,
            "last_seq": self.last_seq,
            "acked_seq": self.acked_seq,
            "records_written": self.records_written,
            "files_written": self.files_written,
            "duplicates_skipped": self.duplicates_skipped,
            "upload_backlog": self._uploader.backlog if self._uploader else 0,
            "error": str(self.error) if self.error else None,
        }


class Uploader:
    """Moves closed files from the staging directory to S3, verified, with retries forever.

    A failed upload leaves the local file where it is; it is retried after a backoff and
    again at the next start (recovery enqueues every local file)."""

    def __init__(self, archiver: Archiver) -> None:
        self.a = archiver
        assert isinstance(archiver.store, S3Store)
        self.store: S3Store = archiver.store
        self._queue: list[tuple[str, str]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._labels = archiver._labels
        self.failures = 0

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def enqueue(self, date: str, name: str) -> None:
        if (date, name) not in self._queue:
            self._queue.append((date, name))
        self.a.metrics.upload_backlog.labels(**self._labels).set(len(self._queue))
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="archiver-upload")

    async def wait_idle(self) -> None:
        async with self._idle:
            await self._idle.wait_for(lambda: not self._queue)

    async def _run(self) -> None:
        delay = self.a.opts.upload_retry
        while True:
            if not self._queue:
                async with self._idle:
                    self._idle.notify_all()
                self._wake.clear()
                if self._stopping:
                    return
                await self._wake.wait()
                continue
            date, name = self._queue[0]
            try:
                await self._upload(date, name)
            except Exception as exc:
                self.failures += 1
                self.a.metrics.upload_failures.labels(**self._labels).inc()
                log.warning(
                    "upload of %s/%s to %s failed (kept locally, retrying in %.1fs): %s",
                    date,
                    name,
                    self.store.description,
                    delay,
                    exc,
                )
                if self._stopping:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                delay = min(delay * 2, self.a.opts.upload_retry_max)
                continue
            delay = self.a.opts.upload_retry
            self._queue.pop(0)
            self.a.metrics.upload_backlog.labels(**self._labels).set(len(self._queue))

    async def _upload(self, date: str, name: str) -> None:
        d = day_dir(self.a.root, self.a.feed, date)
        path = d / name
        if path.exists():
            m = read_manifest(d / MANIFEST)
            sha = next((f.sha256 for f in m.files if f.name == name), None) if m else None
            await self.store.upload_verified(path, self.store.key(self.a.feed, date, name), sha)
            path.unlink()  # only after the object is verified
            self.a.metrics.uploads.labels(**self._labels).inc()
        manifest = d / MANIFEST
        if manifest.exists():
            await self.store.put_bytes(
                self.store.key(self.a.feed, date, MANIFEST), manifest.read_bytes()
            )

    async def stop(self, timeout: float) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            log.warning("uploads unfinished at stop; %d file(s) stay staged", len(self._queue))
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None


async def run_archiver(ctx: RuntimeContext, stop_event: asyncio.Event, **kwargs: Any) -> None:
    """Run until ``stop_event`` is set (or the archiver fails), then stop gracefully."""
    arch = Archiver(ctx, **kwargs)
    await arch.start()
    try:
        assert arch._task is not None
        stopper = asyncio.create_task(stop_event.wait())
        await asyncio.wait({stopper, arch._task}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
    finally:
        await arch.stop()
    if arch.error is not None and not isinstance(arch.error, asyncio.CancelledError):
        raise arch.error
