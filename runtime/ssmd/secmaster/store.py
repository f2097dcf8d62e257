"""The secmaster's KV layout and an in-memory view of it.

Keys: ``market.{T}``, ``event.{E}``, ``series.{S}`` where the ticker is escaped for KV keys
(anything but letters, digits, ``-`` and ``_`` becomes ``=XX``; ``.`` would split tokens).
Values are JSON records of *metadata* only: prices and volumes change every second and
belong to the live feed, so they are left out and KV history shows real changes only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from decimal import Decimal
from typing import Any

import orjson
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from ssmd import subjects
from ssmd.feeds.kalshi.rest_models import Event, Market, Series
from ssmd.transport.kv import ensure_kv

log = logging.getLogger("ssmd.secmaster")

HISTORY = 64  # the most NATS KV keeps per key
_KEEP = re.compile(r"[^A-Za-z0-9_-]")
_UNESC = re.compile(r"=([0-9A-F]{2})")


def _esc(s: str) -> str:
    return _KEEP.sub(lambda m: "".join(f"={b:02X}" for b in m.group(0).encode()), s)


def _unesc(s: str) -> str:
    return _UNESC.sub(lambda m: chr(int(m.group(1), 16)), s)


def kv_key(kind: str, ticker: str) -> str:
    return f"{kind}.{_esc(ticker)}"


def parse_kv_key(key: str) -> tuple[str, str]:
    kind, _, rest = key.partition(".")
    return kind, _unesc(rest)


async def secmaster_kv(js: JetStreamContext, env: str) -> KeyValue:
    return await ensure_kv(js, subjects.secmaster_bucket(env), history=HISTORY)


def _d(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def market_record(m: Market, event: Event | None, series: Series | None) -> dict[str, Any]:
    """The stored metadata of one market (JSON-ready; Decimals as exact strings)."""
    return {
        "ticker": m.ticker,
        "event_ticker": m.event_ticker,
        "series_ticker": (
            event.series_ticker if event and event.series_ticker else m.series_ticker
        ),
        "category": (series.category if series else None) or (event.category if event else None),
        "title": (event.title if event and event.title else m.title),
        "market_title": m.title,
        "yes_sub_title": m.yes_sub_title,
        "no_sub_title": m.no_sub_title,
        "market_type": m.market_type,
        "status": m.status,
        "open_time": m.open_time,
        "close_time": m.close_time,
        "expected_expiration_time": m.expected_expiration_time,
        "latest_expiration_time": m.latest_expiration_time,
        "settlement_timer_seconds": m.settlement_timer_seconds,
        "result": m.result,
        "settlement_value": _d(m.settlement_value_dollars),
        "can_close_early": m.can_close_early,
        "fractional_trading_enabled": m.fractional_trading_enabled,
        "strike_type": m.strike_type,
        "floor_strike": _d(m.floor_strike),
        "cap_strike": _d(m.cap_strike),
        "price_level_structure": m.price_level_structure,
        "price_ranges": [
            {"start": str(r.start), "end": str(r.end), "step": str(r.step)}
            for r in m.price_ranges or []
        ],
        "rules_primary": m.rules_primary,
    }


def event_record(e: Event) -> dict[str, Any]:
    return {
        "event_ticker": e.event_ticker,
        "series_ticker": e.series_ticker,
        "title": e.title,
        "sub_title": e.sub_title,
        "category": e.category,
        "mutually_exclusive": e.mutually_exclusive,
        "strike_date": e.strike_date,
    }


def series_record(s: Series) -> dict[str, Any]:
    return {
        "ticker": s.ticker,
        "title": s.title,
        "category": s.category,
        "frequency": s.frequency,
        "tags": s.tags or [],
        "fee_type": s.fee_type,
    }


# Written with every stored record, never compared: when this version was written.
WRITTEN = "_written_ms"


def same(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    if old is None:
        return False
    return {k: v for k, v in old.items() if k != WRITTEN} == {
        k: v for k, v in new.items() if k != WRITTEN
    }


def diff(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, list[Any]]:
    """Changed fields as ``{field: [old, new]}`` (every field when ``old`` is None)."""
    old = old or {}
    return {k: [old.get(k), v] for k, v in new.items() if k != WRITTEN and old.get(k) != v}


async def read_record(kv: KeyValue, kind: str, ticker: str) -> dict[str, Any] | None:
    try:
        e = await kv.get(kv_key(kind, ticker))
    except (KeyNotFoundError, NotFoundError):
        return None
    if not e.value:
        return None
    rec = orjson.loads(e.value)
    return rec if isinstance(rec, dict) else None


async def _kv_history(js: JetStreamContext, bucket: str, key: str) -> list[tuple[int, bytes]]:
    """(revision, value) of every kept version of ``key``, oldest first.

    Read with our own ordered consumer: nats-py's ``KeyValue.history`` can decide "no
    keys" before the first entry arrives on a busy machine."""
    try:
        info = await js.stream_info(f"KV_{bucket}")
    except NotFoundError:
        return []
    if not info.state.messages:
        return []
    sub = await js.subscribe(f"$KV.{bucket}.{key}", stream=f"KV_{bucket}", ordered_consumer=True)
    out: list[tuple[int, bytes]] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except TimeoutError:
                break  # no (more) entries for this key
            op = (msg.headers or {}).get("KV-Operation")
            if op not in ("DEL", "PURGE"):
                out.append((msg.metadata.sequence.stream, msg.data))
            if msg.metadata.num_pending == 0:
                break
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return out


async def record_history(
    js: JetStreamContext, env: str, kind: str, ticker: str
) -> list[dict[str, Any]]:
    """Every kept revision, oldest first: ``{revision, time_ms, record, changes}``."""
    entries = await _kv_history(js, subjects.secmaster_bucket(env), kv_key(kind, ticker))
    out: list[dict[str, Any]] = []
    prev: dict[str, Any] | None = None
    for revision, value in entries:
        rec = orjson.loads(value) if value else None
        if not isinstance(rec, dict):
            continue
        out.append(
            {
                "revision": revision,
                "time_ms": rec.get(WRITTEN),
                "record": rec,
                "changes": diff(prev, rec) if prev is not None else {},
            }
        )
        prev = rec
    return out


class MarketStore:
    """All markets (and series/events) of the secmaster KV, kept current.

    Follows the bucket's stream with an ordered consumer (latest value per key, then every
    update). ``loaded`` is set once the values present at start are all in: decided from
    the stream's own pending counts, not nats-py's watcher, whose "initial values done"
    marker can come before the values on a busy machine."""

    def __init__(self) -> None:
        self.markets: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.series: dict[str, dict[str, Any]] = {}
        self.revision = 0
        self._sub: Any = None
        self._prefix = ""
        self.loaded = asyncio.Event()

    async def start(self, js: JetStreamContext, env: str) -> None:
        await secmaster_kv(js, env)  # created if missing
        bucket = subjects.secmaster_bucket(env)
        self._prefix = f"$KV.{bucket}."
        info = await js.stream_info(f"KV_{bucket}")
        if not info.state.messages:
            self.loaded.set()
        self._sub = await js.subscribe(
            f"$KV.{bucket}.>",
            stream=f"KV_{bucket}",
            cb=self._on_msg,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        )

    async def _on_msg(self, msg: Any) -> None:
        key = msg.subject[len(self._prefix) :]
        op = (msg.headers or {}).get("KV-Operation")
        self.apply(key, msg.data, op, msg.metadata.sequence.stream)
        if msg.metadata.num_pending == 0:
            self.loaded.set()

    def apply(self, key: str, value: bytes | None, op: str | None, revision: int) -> None:
        kind, ticker = parse_kv_key(key)
        table = {"market": self.markets, "event": self.events, "series": self.series}.get(kind)
        if table is None:
            return
        self.revision = max(self.revision, revision or 0)
        if op in ("DEL", "PURGE") or not value:
            table.pop(ticker, None)
            return
        with contextlib.suppress(orjson.JSONDecodeError):
            rec = orjson.loads(value)
            if isinstance(rec, dict):
                table[ticker] = rec

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    def query(
        self,
        *,
        status: str | None = None,
        series: str | None = None,
        category: str | None = None,
        event: str | None = None,
    ) -> list[dict[str, Any]]:
        out = []
        for rec in self.markets.values():
            if status and not status_matches(rec.get("status"), status):
                continue
            if series and rec.get("series_ticker") != series:
                continue
            if category and (rec.get("category") or "").lower() != category.lower():
                continue
            if event and rec.get("event_ticker") != event:
                continue
            out.append(rec)
        out.sort(key=lambda r: r["ticker"])
        return out


# The query vocabulary (open/paused/settled...) vs the Market object's (active/inactive...).
_STATUS_ALIASES = {
    "open": {"active", "open"},
    "active": {"active", "open"},
    "paused": {"inactive", "paused"},
    "unopened": {"initialized", "unopened"},
    "closed": {"closed"},
    "determined": {"determined", "disputed", "amended"},
    "settled": {"finalized", "settled"},
}


def status_matches(value: object, wanted: str) -> bool:
    w = wanted.lower()
    return isinstance(value, str) and value.lower() in _STATUS_ALIASES.get(w, {w})
