"""Helpers for the books/gateway/secmaster tests: publish frames as the connector would,
run a gateway, and talk to it with real WebSocket clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import websockets
from nats.js import JetStreamContext

from ssmd import subjects
from ssmd.feeds.kalshi.messages import decode_envelope
from ssmd.gateway.service import Gateway
from ssmd.runtime import RuntimeContext
from ssmd.spec import Environment
from ssmd.transport.streams import ensure_streams

from .support import FIXTURES
from .support import until as wait_for


def fixture_frames() -> list[bytes]:
    return (FIXTURES / "kalshi-fixtures.jsonl").read_bytes().splitlines()


async def publish_frames(js: JetStreamContext, env: str, feed: str, frames: list[bytes]) -> int:
    """Publish raw frames on their json subjects, like the connector; returns the last seq."""
    last = 0
    for i, raw in enumerate(frames):
        e = decode_envelope(raw)
        subj = subjects.json_subject(env, feed, subjects.frame_type_for(e.type), e.market_ticker)
        ack = await js.publish(
            subj,
            raw,
            headers={
                "Nats-Msg-Id": f"t:{e.sid}:{e.seq if e.seq is not None else i}:{i}",
                "Ssmd-Recv-Ns": str(time.time_ns()),
                "Ssmd-Conn": "t",
            },
        )
        last = ack.seq
    return last


async def start_gateway(env: Environment, nats_url: str, tmp: Path, **kw: Any) -> Gateway:
    ctx = RuntimeContext(env=env, nats_url=nats_url, data_dir=tmp)
    gw = Gateway(ctx, port=0, **kw)
    await gw.start()
    return gw


async def prepare(js: JetStreamContext, env: Environment) -> None:
    await ensure_streams(js, env)


class WsClient:
    """A real WebSocket client that records every event it receives."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.books: dict[str, dict[float, float]] = {}
        self.asks: dict[str, dict[float, float]] = {}
        self._task = asyncio.create_task(self._read())
        self.closed = asyncio.Event()
        self.close_code: int | None = None

    @classmethod
    async def connect(cls, url: str, **kw: Any) -> WsClient:
        ws = await websockets.connect(url, max_size=None, **kw)
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                ev = orjson.loads(raw)
                self.events.append(ev)
                if ev.get("type") == "orderbook":
                    self._apply(ev)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    def _apply(self, ev: dict[str, Any]) -> None:
        s = ev["symbol"]
        if ev["action"] == "snapshot":
            self.books[s] = {p: q for p, q in ev["bids"]}
            self.asks[s] = {p: q for p, q in ev["asks"]}
            return
        for side, p, q in ev["changes"]:
            levels = (self.books if side == "bid" else self.asks).setdefault(s, {})
            if q == 0:
                levels.pop(p, None)
            else:
                levels[p] = q

    async def send(self, obj: Any) -> None:
        await self.ws.send(orjson.dumps(obj).decode() if not isinstance(obj, str) else obj)

    def of(self, typ: str, **match: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e.get("type") == typ and all(e.get(k) == v for k, v in match.items())
        ]

    async def wait(self, pred: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        await wait_for(pred, timeout, what)

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()


async def gather_all(*aws: Awaitable[Any]) -> list[Any]:
    return list(await asyncio.gather(*aws))
