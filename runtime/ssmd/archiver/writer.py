"""Writing one archive file durably, and recovering what a crash left behind.

A file is written as ``NAME.partial``: lines are buffered in memory (bounded), compressed into
one independent frame per flush, appended and fsynced. Only data in a complete, fsynced frame
is acknowledged to JetStream, so after ``kill -9`` the partial file is cut back to its last
complete frame and every message after it is redelivered."""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ssmd.archiver.manifest import (
    PARTIAL,
    Codec,
    FileEntry,
    FileStats,
    Format,
    SubjectClassifier,
    SubjectInfo,
    decompress_frames,
    exchange_gap_entry,
    file_chunks,
    format_of,
    fsync_dir,
    iso_ns,
    iter_lines,
    remove_quietly,
    scan_lines,
)


class ArchiveWriteError(OSError):
    """Writing the archive failed; the message names the path and what to do."""


def explain_os_error(path: Path, exc: OSError) -> ArchiveWriteError:
    if exc.errno == errno.ENOSPC:
        hint = "the disk is full: free space or point spec.storage at a bigger volume; unacked messages stay in JetStream"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "no permission to write there: fix the directory's permissions or choose another spec.storage.local.path"
    else:
        hint = exc.strerror or str(exc)
    return ArchiveWriteError(exc.errno or 0, f"cannot write {path}: {hint}")


class ArchiveFile:
    """One ``.partial`` file being written. Not thread-safe; one writer per file."""

    def __init__(self, final_path: Path, codec: Codec, *, flush_bytes: int = 4 << 20) -> None:
        self.final_path = final_path
        self.path = final_path.with_name(final_path.name + PARTIAL)
        self.codec = codec
        self.stats = FileStats()
        self.flush_bytes = flush_bytes
        self._buf: list[bytes] = []
        self._buf_bytes = 0
        self._sha = hashlib.sha256()
        self.bytes_written = 0
        self.durable_seq = 0  # last seq in an fsynced frame
        self._pending_seq = 0  # last seq written to the OS, not yet fsynced
        self._buffered_seq = 0  # last seq appended to the buffer
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise explain_os_error(self.path, exc) from None

    def append(
        self,
        line: bytes,
        seq: int,
        recv_ns: int,
        info: SubjectInfo,
        frame: bytes,
        *,
        invalid: bool = False,
    ) -> bool:
        """Buffer one line; True when the buffer is big enough to be flushed."""
        self._buf.append(line)
        self._buf_bytes += len(line)
        self._buffered_seq = seq
        self.stats.add(seq, recv_ns, info)
        if info.is_gap:
            self.stats.exchange_gaps.append(exchange_gap_entry(seq, recv_ns, frame))
        if invalid:
            self.stats.invalid_frames += 1
        return self._buf_bytes >= self.flush_bytes

    @property
    def buffered(self) -> bool:
        return bool(self._buf)

    def flush(self) -> None:
        """Compress the buffer into one complete frame and hand it to the OS (no fsync)."""
        if not self._buf:
            return
        data = self.codec.compress_frame(b"".join(self._buf))
        self._buf.clear()
        self._buf_bytes = 0
        try:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            # The frame may be half written: cut it off so the file stays a clean prefix.
            try:
                os.ftruncate(self._fd, self.bytes_written)
            except OSError:
                pass
            raise explain_os_error(self.path, exc) from None
        self._sha.update(data)
        self.bytes_written += len(data)
        self._pending_seq = self._buffered_seq

    def sync(self) -> int:
        """fsync what was flushed; returns the last durable sequence."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise explain_os_error(self.path, exc) from None
        self.durable_seq = self._pending_seq
        return self.durable_seq

    def close(self) -> FileEntry:
        """Flush, fsync, rename to the final name (never overwriting), fsync the directory."""
        self.flush()
        self.sync()
        os.close(self._fd)
        if self.final_path.exists():
            raise ArchiveWriteError(0, f"{self.final_path} already exists; refusing to overwrite")
        try:
            os.rename(self.path, self.final_path)
            fsync_dir(self.final_path.parent)
        except OSError as exc:
            raise explain_os_error(self.final_path, exc) from None
        return entry_for(
            self.final_path.name, self.stats, self.bytes_written, self._sha.hexdigest()
        )

    def abandon(self) -> None:
        """Close the descriptor without finishing (the partial is recovered at next start)."""
        try:
            os.close(self._fd)
        except OSError:
            pass


def entry_for(name: str, stats: FileStats, size: int, sha256: str) -> FileEntry:
    return FileEntry(
        name=name,
        start=iso_ns(stats.start_ns),
        end=iso_ns(stats.end_ns),
        start_ns=stats.start_ns,
        end_ns=stats.end_ns,
        records=stats.records,
        bytes=size,
        sha256=sha256,
        nats_start_seq=stats.first_seq,
        nats_end_seq=stats.last_seq,
        tickers=len(stats.tickers),
        message_types=dict(sorted(stats.types.items())),
        exchange_gaps=len(stats.exchange_gaps),
        invalid_frames=stats.invalid_frames,
    )


@dataclass
class Recovered:
    """A file found at start-up: its stats, and how many bytes of a torn tail were cut."""

    path: Path
    stats: FileStats
    size: int
    sha256: str
    truncated_bytes: int


def scan_file(path: Path, *, repair: bool) -> Recovered:
    """Read a (possibly torn) archive file: keep complete frames of complete lines.

    With ``repair``, the file is truncated to its last complete frame (and fsynced), so it can
    be renamed to its final name. Memory stays bounded by one frame."""
    fmt: Format = format_of(path.name)
    stats = FileStats()
    classify = SubjectClassifier()
    sha = hashlib.sha256()
    good = 0
    with path.open("rb") as f:
        for content, end in decompress_frames(file_chunks(f), fmt):
            if content and not content.endswith(b"\n"):
                break  # cannot happen with our writer; treat as torn
            try:
                # decode the whole frame before counting it: a bad frame counts for nothing
                frame_stats = FileStats()
                for lines in iter_lines([content]):
                    scan_lines(lines, frame_stats, classify)
            except ValueError:
                break
            stats.merge(frame_stats)
            good = end
    size = path.stat().st_size
    with path.open("rb") as f:
        remaining = good
        while remaining:
            chunk = f.read(min(remaining, 1 << 20))
            if not chunk:
                break
            sha.update(chunk)
            remaining -= len(chunk)
    if repair and good < size:
        with path.open("r+b") as f:
            f.truncate(good)
            f.flush()
            os.fsync(f.fileno())
    return Recovered(path, stats, good, sha.hexdigest(), size - good)


def discard(path: Path) -> None:
    remove_quietly(path)
    fsync_dir(path.parent)
