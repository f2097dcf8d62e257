"""Per-day data quality: what is missing or suspicious, and one 0-1 score."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from ssmd.archiver.manifest import DayManifest, classify_subject, decode_line, iter_lines
from ssmd.archiver.storage import ArchiveStore
from ssmd.data.archive import iter_day_chunks

SCORE_FORMULA = (
    "score = coverage * (1 - problems / (records + missing_seqs)); "
    "coverage = 1 - min(1, gap_seconds / span_seconds); "
    "problems = dead_letters + missing_seqs + out_of_order + duplicates"
)


@dataclass
class Quality:
    feed: str
    date: str
    records: int = 0
    dead_letters: int = 0  # frames that are not valid JSON (would be dead-lettered downstream)
    stream_gaps: int = 0
    missing_seqs: int = 0
    exchange_gaps: int = 0
    gap_seconds: float = 0.0
    span_seconds: float = 0.0
    out_of_order: int = 0  # exchange ts_ms going backwards within a ticker and channel
    duplicates: int = 0  # repeated trade_id, or repeated (sid, seq) of order-book frames
    score: float = 1.0
    formula: str = SCORE_FORMULA
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gap_seconds(m: DayManifest) -> float:
    total = 0
    for g in m.gaps["stream"]:
        a, b = g.get("after_recv_ns"), g.get("before_recv_ns")
        if a and b and b > a:
            total += b - a
    for g in m.gaps["exchange"]:
        a, b = g.get("start_ns"), g.get("end_ns")
        if isinstance(a, int) and isinstance(b, int) and b > a:
            total += b - a
    return total / 1e9


def score(q: Quality) -> float:
    coverage = 1.0 - min(1.0, q.gap_seconds / q.span_seconds) if q.span_seconds > 0 else 1.0
    denom = q.records + q.missing_seqs
    problems = q.dead_letters + q.missing_seqs + q.out_of_order + q.duplicates
    frac = min(1.0, problems / denom) if denom else 0.0
    return round(max(0.0, coverage * (1.0 - frac)), 4)


def manifest_quality(m: DayManifest) -> Quality:
    """What the manifest alone tells (no file is read): used by ``inventory``."""
    q = Quality(feed=m.feed, date=m.date, records=m.records)
    q.stream_gaps = len(m.gaps["stream"])
    q.missing_seqs = sum(int(g.get("count", 0)) for g in m.gaps["stream"])
    q.exchange_gaps = len(m.gaps["exchange"])
    q.dead_letters = m.invalid_frames
    q.gap_seconds = gap_seconds(m)
    if m.files:
        q.span_seconds = (max(f.end_ns for f in m.files) - min(f.start_ns for f in m.files)) / 1e9
    q.score = score(q)
    return q


async def day_quality(store: ArchiveStore, feed: str, m: DayManifest) -> Quality:
    """Reads every line of the day once; memory grows only with tickers and trade ids."""
    q = manifest_quality(m)
    q.records = 0
    q.dead_letters = 0
    last_ts: dict[tuple[str, str], int] = {}
    trade_ids: set[str] = set()
    book_seqs: set[tuple[int, int]] = set()
    kinds: dict[str, Any] = {}
    async for _, content in iter_day_chunks(store, feed, m):
        for lines in iter_lines([content]):
            for line in lines:
                rec = decode_line(line)
                q.records += 1
                info = kinds.get(rec.subject)
                if info is None:
                    info = kinds[rec.subject] = classify_subject(rec.subject)
                if info.is_gap:
                    continue
                try:
                    doc = orjson.loads(rec.frame)
                except orjson.JSONDecodeError:
                    q.dead_letters += 1
                    continue
                if not isinstance(doc, dict):
                    continue
                msg = doc.get("msg")
                if not isinstance(msg, dict):
                    continue
                ts = msg.get("ts_ms")
                if isinstance(ts, int) and info.ticker:
                    key = (info.ticker, info.mtype)
                    prev = last_ts.get(key)
                    if prev is not None and ts < prev:
                        q.out_of_order += 1
                    else:
                        last_ts[key] = ts
                if info.mtype == "trade":
                    tid = msg.get("trade_id")
                    if isinstance(tid, str):
                        if tid in trade_ids:
                            q.duplicates += 1
                        trade_ids.add(tid)
                elif info.mtype == "orderbook":
                    sid, seq = doc.get("sid"), doc.get("seq")
                    if isinstance(sid, int) and isinstance(seq, int):
                        if (sid, seq) in book_seqs:
                            q.duplicates += 1
                        book_seqs.add((sid, seq))
    q.details = {"manifest_records": m.records, "files": len(m.files)}
    q.score = score(q)
    return q
