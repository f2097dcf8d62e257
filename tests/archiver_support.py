"""Helpers for the archiver and data-tool tests: publishing like the connector does, and
reading an archive back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from nats.aio.client import Client

from ssmd import subjects
from ssmd.archiver.manifest import MANIFEST, DayManifest, decode_line, iter_lines, read_file_chunks
from ssmd.runtime import RuntimeContext
from ssmd.spec import Environment

from .support import make_environment

BASE_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
TICKERS = ["KXBTCD-25DEC31-T100000", "INXD-25DEC31-B5000", "KX.WEIRD*TICK"]


def archive_env(
    root: Path,
    name: str = "test",
    *,
    spec: dict[str, Any] | None = None,
    storage: dict[str, Any] | None = None,
    **archiver: Any,
) -> Environment:
    return make_environment(
        name,
        storage=storage or {"local": {"path": str(root)}},
        archiver={"fsyncInterval": "50ms", **archiver},
        **(spec or {}),
    )


def ctx_for(env: Environment, url: str, tmp: Path) -> RuntimeContext:
    return RuntimeContext(env=env, nats_url=url, data_dir=tmp, status_interval=0.2)


def frame_for(i: int, kind: str = "trade", ticker: str = TICKERS[0]) -> bytes:
    if kind == "trade":
        return orjson.dumps(
            {
                "type": "trade",
                "sid": 3,
                "msg": {
                    "trade_id": f"t-{i}",
                    "market_ticker": ticker,
                    "yes_price_dollars": f"0.{(i % 90) + 10:02d}00",
                    "no_price_dollars": f"0.{90 - (i % 90):02d}00",
                    "count_fp": f"{i % 7 + 1}.00",
                    "taker_side": "yes" if i % 2 else "no",
                    "ts_ms": 1767225600000 + i,
                },
            }
        )
    if kind == "ticker":
        return orjson.dumps(
            {
                "type": "ticker",
                "sid": 2,
                "msg": {
                    "market_ticker": ticker,
                    "price_dollars": "0.4300",
                    "yes_bid_dollars": "0.4300",
                    "yes_ask_dollars": "0.4400",
                    "volume_fp": f"{i}.00",
                    "ts_ms": 1767225600000 + i,
                },
            }
        )
    return orjson.dumps(
        {
            "type": "orderbook_delta",
            "sid": 1,
            "seq": i,
            "msg": {
                "market_ticker": ticker,
                "price_dollars": "0.4300",
                "delta_fp": "-20.00" if i % 3 else "20.00",
                "side": "yes" if i % 2 else "no",
                "ts_ms": 1767225600000 + i,
            },
        }
    )


KINDS = {"trade": "trade", "ticker": "ticker", "orderbook": "orderbook"}


def message(env: str, feed: str, i: int, recv_ns: int) -> tuple[str, bytes, dict[str, str]]:
    kind = ("trade", "ticker", "orderbook")[i % 3]
    ticker = TICKERS[i % len(TICKERS)]
    subject = subjects.json_subject(env, feed, kind, ticker)  # type: ignore[arg-type]
    headers = {"Nats-Msg-Id": f"c1:{i}", "Ssmd-Recv-Ns": str(recv_ns), "Ssmd-Conn": "c1"}
    return subject, frame_for(i, kind, ticker), headers


async def publish_all(
    nc: Client, msgs: Iterable[tuple[str, bytes, dict[str, str] | None]], window: int = 4000
) -> int:
    """Publish pipelined with JetStream acks (like the connector): at most ``window`` in
    flight; returns how many were acknowledged. Raises if any publish was refused."""
    inbox = nc.new_inbox()
    acked = 0
    errors: list[bytes] = []
    free = asyncio.Semaphore(window)
    done = asyncio.Event()
    sent = 0
    finished = False

    async def on_ack(msg: Any) -> None:
        nonlocal acked
        if b'"error"' in msg.data or not msg.data:
            errors.append(msg.data)
        acked += 1
        free.release()
        if finished and acked == sent:
            done.set()

    sub = await nc.subscribe(inbox, cb=on_ack)
    for subject, data, headers in msgs:
        await free.acquire()
        await nc.publish(subject, data, reply=inbox, headers=headers)
        sent += 1
    finished = True
    if acked == sent:
        done.set()
    await nc.flush()
    await done.wait()
    await sub.unsubscribe()
    if errors:
        raise AssertionError(f"{len(errors)} publishes refused: {errors[0]!r}")
    return acked


def read_day(root: Path, feed: str, date: str) -> tuple[DayManifest, list[Any]]:
    d = root / feed / date
    m = DayManifest.from_json((d / MANIFEST).read_bytes())
    records = []
    for f in m.files:
        for lines in iter_lines(read_file_chunks(d / f.name)):
            records.extend(decode_line(line) for line in lines)
    return m, records


def all_records(root: Path, feed: str) -> list[Any]:
    out: list[Any] = []
    for d in sorted((root / feed).iterdir()):
        for f in sorted(d.glob("*.jsonl.zst")):
            for lines in iter_lines(read_file_chunks(f)):
                out.extend(decode_line(line) for line in lines)
    return out


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t
