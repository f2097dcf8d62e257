"""Export an archived day to Parquet: one row per message, typed columns for trades,
tickers and book changes (prices and sizes as decimals, never floats), plus the raw frame."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ssmd.archiver.manifest import DayManifest, classify_subject, decode_line, iter_lines
from ssmd.archiver.storage import ArchiveStore
from ssmd.data.archive import iter_day_chunks

DEC = pa.decimal128(20, 4)
SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("recv_time", pa.timestamp("ns", tz="UTC")),
        ("subject", pa.string()),
        ("channel", pa.string()),  # trade, ticker, orderbook, lifecycle, control, gap
        ("type", pa.string()),  # the exchange's message type
        ("ticker", pa.string()),
        ("sid", pa.int64()),
        ("exchange_seq", pa.int64()),
        ("ts_ms", pa.int64()),
        ("trade_id", pa.string()),
        ("yes_price", DEC),
        ("no_price", DEC),
        ("count", DEC),
        ("taker_side", pa.string()),
        ("price", DEC),  # ticker last price, or the book level of a delta
        ("yes_bid", DEC),
        ("yes_ask", DEC),
        ("volume", DEC),
        ("open_interest", DEC),
        ("side", pa.string()),
        ("delta", DEC),
        ("frame", pa.string()),
    ]
)
_Q = Decimal("0.0001")


def _dec(v: Any, cents: bool = False) -> Decimal | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        d = Decimal(v) if isinstance(v, str) else Decimal(int(v))
    except (InvalidOperation, ValueError, TypeError):
        return None
    if cents:  # legacy integer-cent fields (recordings before March 2026)
        d = d / 100
    try:
        return d.quantize(_Q)
    except InvalidOperation:
        return None


def _pick(msg: dict[str, Any], new: str, legacy: str | None = None) -> Decimal | None:
    if new in msg:
        return _dec(msg[new])
    if legacy and legacy in msg:
        return _dec(msg[legacy], cents=legacy.endswith("price") or legacy in ("yes_bid", "yes_ask"))
    return None


def row_for(seq: int, recv_ns: int, subject: str, frame: bytes) -> dict[str, Any]:
    info = classify_subject(subject)
    row: dict[str, Any] = {
        "seq": seq,
        "recv_time": recv_ns,
        "subject": subject,
        "channel": info.mtype,
        "ticker": info.ticker,
        "frame": frame.decode("utf-8", errors="replace"),
    }
    try:
        doc = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return row
    if not isinstance(doc, dict):
        return row
    row["type"] = doc.get("type") if isinstance(doc.get("type"), str) else None
    row["sid"] = doc.get("sid") if isinstance(doc.get("sid"), int) else None
    row["exchange_seq"] = doc.get("seq") if isinstance(doc.get("seq"), int) else None
    msg = doc.get("msg")
    if not isinstance(msg, dict):
        return row
    ts = msg.get("ts_ms")
    row["ts_ms"] = ts if isinstance(ts, int) else None
    if info.mtype == "trade":
        row["trade_id"] = msg.get("trade_id")
        row["yes_price"] = _pick(msg, "yes_price_dollars", "yes_price")
        row["no_price"] = _pick(msg, "no_price_dollars", "no_price")
        row["count"] = _pick(msg, "count_fp", "count")
        row["taker_side"] = msg.get("taker_side")
    elif info.mtype == "ticker":
        row["price"] = _pick(msg, "price_dollars", "price")
        row["yes_bid"] = _pick(msg, "yes_bid_dollars", "yes_bid")
        row["yes_ask"] = _pick(msg, "yes_ask_dollars", "yes_ask")
        row["volume"] = _pick(msg, "volume_fp", "volume")
        row["open_interest"] = _pick(msg, "open_interest_fp", "open_interest")
    elif info.mtype == "orderbook" and doc.get("type") == "orderbook_delta":
        row["price"] = _pick(msg, "price_dollars", "price")
        row["delta"] = _pick(msg, "delta_fp", "delta")
        row["side"] = msg.get("side")
    return row


async def export_day(
    store: ArchiveStore,
    feed: str,
    manifest: DayManifest,
    out: Path,
    *,
    on_progress: Callable[[int], None] | None = None,
    batch_rows: int = 50_000,
) -> int:
    """Stream the day into ``out`` (written as ``out.partial`` then renamed); memory stays
    bounded by ``batch_rows``. Returns the number of rows."""
    tmp = out.with_name(out.name + ".partial")
    rows: list[dict[str, Any]] = []
    n = 0
    writer = pq.ParquetWriter(tmp, SCHEMA, compression="zstd")
    try:
        async for _, content in iter_day_chunks(store, feed, manifest):
            done = 0
            for lines in iter_lines([content]):
                for line in lines:
                    rec = decode_line(line)
                    rows.append(row_for(rec.seq, rec.recv_ns, rec.subject, rec.frame))
                    done += 1
            if len(rows) >= batch_rows:
                writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
                n += len(rows)
                rows = []
            if on_progress:
                on_progress(done)
        if rows:
            writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
            n += len(rows)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    tmp.replace(out)
    return n
