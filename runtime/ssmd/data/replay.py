"""Replay an archived day: frames back, byte-identical, in stream order."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import BinaryIO

from ssmd.archiver.manifest import DayManifest, classify_subject, decode_line, iter_lines
from ssmd.archiver.storage import ArchiveStore
from ssmd.data.archive import iter_day_chunks

# Whole-chunk fast path (no filter, no pacing): the prefix of the first line goes, and every
# "}\n<next line's prefix>" becomes "\n", in one C-level substitution per chunk. A subject with
# an escaped character, a frame stored as frame_b64 or a gap record sends the chunk down the
# line-by-line path instead (the counts tell).
_PREFIX = rb'\{"seq":\d+,"recv_ns":\d+,"subject":"[^"\\\n]*","frame":'
_FIRST_RE = re.compile(_PREFIX)
_JOIN_RE = re.compile(rb"\}\n" + _PREFIX)


def fast_frames(content: bytes) -> bytes | None:
    """Frames of a chunk of whole archive lines, one per line; None when the chunk needs the
    line-by-line path."""
    m = _FIRST_RE.match(content)
    if m is None or not content.endswith(b"}\n"):
        return None
    if b'"frame_b64":' in content or b'.gap","frame":' in content:
        return None
    body, joined = _JOIN_RE.subn(b"\n", content[m.end() :])
    if joined + 1 != content.count(b"\n"):
        return None
    return body[:-2] + b"\n"


Publish = Callable[[str, bytes, int], Awaitable[None]]


@dataclass
class ReplayFilter:
    ticker: str | None = None
    mtype: str | None = None  # trade, ticker, orderbook, lifecycle, control, gap
    include_gaps: bool = False

    @property
    def trivial(self) -> bool:
        return self.ticker is None and self.mtype is None and not self.include_gaps

    def __post_init__(self) -> None:
        self._cache: dict[str, bool] = {}

    def wants(self, subject: str) -> bool:
        ok = self._cache.get(subject)
        if ok is None:
            info = classify_subject(subject)
            if info.is_gap:
                ok = self.include_gaps or self.mtype == "gap"
            else:
                ok = info.archived
                if self.mtype is not None and info.mtype != self.mtype:
                    ok = False
                if self.ticker is not None and info.ticker != self.ticker:
                    ok = False
            self._cache[subject] = ok
        return ok


async def replay_day(
    store: ArchiveStore,
    feed: str,
    manifest: DayManifest,
    *,
    out: BinaryIO | None = None,
    publish: Publish | None = None,
    flt: ReplayFilter | None = None,
    speed: float | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write each frame + newline to ``out`` or ``publish(subject, frame, recv_ns)`` it.
    ``speed`` None = as fast as possible; 1.0 = the original pacing (by receive time).
    Returns the number of frames replayed."""
    flt = flt or ReplayFilter()
    n = 0
    fast = out is not None and publish is None and speed is None and flt.trivial
    first_recv = 0
    t0 = 0.0
    async for _, content in iter_day_chunks(store, feed, manifest):
        if fast:
            assert out is not None
            frames = fast_frames(content)
            if frames is not None:
                out.write(frames)
                k = frames.count(b"\n")
                n += k
                if on_progress:
                    on_progress(k)
                continue
        done = 0
        for lines_ in iter_lines([content]):
            for line in lines_:
                done += 1
                rec = decode_line(line)
                if not flt.wants(rec.subject):
                    continue
                if speed is not None:
                    if not first_recv:
                        first_recv, t0 = rec.recv_ns, time.monotonic()
                    due = t0 + (rec.recv_ns - first_recv) / 1e9 / speed
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)  # pacing is the point here
                if publish is not None:
                    await publish(rec.subject, rec.frame, rec.recv_ns)
                else:
                    assert out is not None
                    out.write(rec.frame + b"\n")
                n += 1
        if on_progress:
            on_progress(done)
    return n
