"""An append-only local spill file for publish records, replayed in order.

When the in-memory queue is full (JetStream slow or down), records go to disk instead of
stalling the exchange reader. A record is length-prefixed and CRC-checked so a torn write at
a crash is detected and only the incomplete tail is lost. The file survives a restart: a
new process replays what the previous one could not publish.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from pathlib import Path
from typing import NamedTuple


class Record(NamedTuple):
    """One message to publish. Headers are derived from the fields at publish time."""

    subject: str
    payload: bytes
    msg_id: str
    recv_ns: int
    conn: str


# crc32, body length, subject length, msg-id length, conn length, recv_ns
_HEAD = struct.Struct("!IIHHHQ")
_READ_CHUNK = 1 << 20


def encode_record(rec: Record) -> bytes:
    s, m, c = rec.subject.encode(), rec.msg_id.encode(), rec.conn.encode()
    body = b"".join((s, m, c, rec.payload))
    return _HEAD.pack(zlib.crc32(body), len(body), len(s), len(m), len(c), rec.recv_ns) + body


def decode_records(buf: bytes | memoryview, start: int = 0) -> tuple[list[Record], int]:
    """Complete records in ``buf`` from ``start``; returns them and the offset after the last.

    Stops at an incomplete or corrupt record (a torn tail): the caller decides what that
    means (more data may follow, or the file ends there)."""
    out: list[Record] = []
    pos, end, hs = start, len(buf), _HEAD.size
    mv = memoryview(buf)
    while end - pos >= hs:
        crc, blen, sl, ml, cl, recv_ns = _HEAD.unpack_from(mv, pos)
        if end - pos - hs < blen:
            break
        body = mv[pos + hs : pos + hs + blen]
        if zlib.crc32(body) != crc or sl + ml + cl > blen:
            break
        b = bytes(body)
        out.append(
            Record(
                b[:sl].decode(),
                b[sl + ml + cl :],
                b[sl : sl + ml].decode(),
                recv_ns,
                b[sl + ml : sl + ml + cl].decode(),
            )
        )
        pos += hs + blen
    return out, pos


class SpillFile:
    """One append-only file with a read cursor; ``reset()`` truncates it once fully read."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+b")  # noqa: SIM115 - lives as long as the publisher
        self._fh.seek(0, os.SEEK_END)
        self.size = self._fh.tell()
        self._read_pos = 0
        self._flushed = self.size
        self._buf: deque[Record] = deque()
        self.records_written = 0
        self.records_pending = 0  # written and not yet read back (approximate after restart)
        if self.size:
            self.records_pending = self._count_existing()

    def _count_existing(self) -> int:
        with open(self.path, "rb") as fh:
            data = fh.read()
        recs, end = decode_records(data)
        if end < len(data):
            # A torn tail from a crash: cut it so appends start at a record boundary.
            self._fh.truncate(end)
            self._fh.seek(0, os.SEEK_END)
            self.size = self._flushed = end
        return len(recs)

    def __len__(self) -> int:
        return self.records_pending

    @property
    def empty(self) -> bool:
        return self.records_pending == 0

    def append(self, rec: Record, force: bool = False) -> bool:
        """Append; False (nothing written) when the file would exceed ``max_bytes``.
        ``force`` ignores the limit (small essential records such as gap records)."""
        data = encode_record(rec)
        if not force and self.size + len(data) > self.max_bytes:
            return False
        self._fh.write(data)
        self.size += len(data)
        self.records_written += 1
        self.records_pending += 1
        return True

    def flush(self) -> None:
        if self._flushed != self.size:
            self._fh.flush()
            self._flushed = self.size

    def sync(self) -> None:
        self.flush()
        os.fsync(self._fh.fileno())

    def pop(self) -> Record | None:
        """The oldest unread record, or None when everything written has been read."""
        if not self._buf and not self._fill():
            return None
        self.records_pending -= 1
        return self._buf.popleft()

    def _fill(self) -> bool:
        if self._read_pos >= self.size:
            return False
        self.flush()
        with open(self.path, "rb") as fh:
            fh.seek(self._read_pos)
            data = fh.read(max(_READ_CHUNK, 0))
        recs, used = decode_records(data)
        if not recs:
            if len(data) >= _HEAD.size:
                blen = _HEAD.unpack_from(data)[1]
                if blen + _HEAD.size > len(data):  # one record larger than the chunk
                    with open(self.path, "rb") as fh:
                        fh.seek(self._read_pos)
                        data = fh.read(blen + _HEAD.size)
                    recs, used = decode_records(data)
            if not recs:
                # Corrupt data (never written by us in this process): skip the rest.
                self.records_pending = 0
                self._read_pos = self.size
                return False
        self._read_pos += used
        self._buf.extend(recs)
        return True

    def remaining(self) -> list[Record]:
        """Every unread record (for rewriting the file at shutdown)."""
        out = list(self._buf)
        self._buf.clear()
        while (rec := self.pop()) is not None:
            out.append(rec)
        return out

    def reset(self) -> None:
        """Everything was read and published: start an empty file."""
        self._fh.truncate(0)
        self._fh.seek(0)
        self.size = self._flushed = self._read_pos = 0
        self._buf.clear()
        self.records_pending = 0

    def rewrite(self, records: list[Record]) -> None:
        """Replace the file with ``records`` (shutdown: unpublished work for the next run)."""
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            for rec in records:
                fh.write(encode_record(rec))
            fh.flush()
            os.fsync(fh.fileno())
        self._fh.close()
        os.replace(tmp, self.path)
        self._fh = open(self.path, "a+b")  # noqa: SIM115
        self._fh.seek(0, os.SEEK_END)
        self.size = self._flushed = self._fh.tell()
        self._read_pos = 0
        self._buf.clear()
        self.records_pending = len(records)

    def close(self) -> None:
        self.flush()
        self._fh.close()
        if self.size == 0:
            # Nothing left: no file means "nothing to replay" to the next run.
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
