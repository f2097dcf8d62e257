"""Helpers for the Kalshi simulator tests: a signing key, configs, a small JSON client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from websockets.asyncio.client import ClientConnection, connect

from ssmd.feeds.kalshi.auth import KalshiCredentials, generate_private_key
from ssmd.sim.kalshi import KalshiSim, SimConfig

T0 = 1767211200000  # 2025-12-31T20:00:00Z, the fixtures' epoch
KEY_ID = "0f9c4a5e-5b1d-4a57-9e0f-5d3c2b1a0e9f"
Frame = dict[str, Any]


@cache
def signing_key() -> RSAPrivateKey:
    return generate_private_key()


def headers(
    key: RSAPrivateKey | None = None, key_id: str = KEY_ID, now_ms: int | None = None
) -> dict[str, str]:
    return KalshiCredentials(key_id, key or signing_key()).headers(now_ms=now_ms)


def config(**overrides: Any) -> SimConfig:
    """Paused, no lifecycle, fixed clock and key: a test drives the engine with step()."""
    base: dict[str, Any] = {
        "seed": 1,
        "markets": 20,
        "rate": 0,
        "start_ms": T0,
        "keys": {KEY_ID: signing_key().public_key()},
        "paused": True,
        "lifecycle_interval_s": 0,
        "record_frames": True,
    }
    base.update(overrides)
    return SimConfig(**base)


class Client:
    """A plain websockets client that speaks JSON and awaits frames with a timeout."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.raw: list[str] = []  # every text frame received, in order
        self._next_id = 1

    async def send(
        self, cmd: str, params: dict[str, Any] | None = None, cmd_id: int | None = None
    ) -> int:
        if cmd_id is None:
            cmd_id = self._next_id
        self._next_id = max(self._next_id, cmd_id) + 1
        msg: dict[str, Any] = {"id": cmd_id, "cmd": cmd}
        if params is not None:
            msg["params"] = params
        await self.ws.send(json.dumps(msg))
        return cmd_id

    async def recv_text(self, timeout: float = 5.0) -> str:
        data = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(data, str), "Kalshi sends text frames"
        self.raw.append(data)
        return data

    async def recv(self, timeout: float = 5.0) -> Frame:
        frame = json.loads(await self.recv_text(timeout))
        assert isinstance(frame, dict)
        return frame

    async def recv_n(self, n: int, timeout: float = 5.0) -> list[Frame]:
        return [await self.recv(timeout) for _ in range(n)]

    async def until(
        self, pred: Callable[[Frame], bool], timeout: float = 5.0
    ) -> tuple[Frame, list[Frame]]:
        """Read until a frame matches; returns it and the frames read before it."""
        before: list[Frame] = []
        async with asyncio.timeout(timeout):
            while True:
                f = await self.recv(timeout)
                if pred(f):
                    return f, before
                before.append(f)

    async def response(self, cmd_id: int, timeout: float = 5.0) -> Frame:
        f, _ = await self.until(lambda f: f.get("id") == cmd_id, timeout)
        return f

    async def sync(self, timeout: float = 5.0) -> list[Frame]:
        """Barrier: every command sent before this one has been handled by the server.
        Returns the frames read on the way (the barrier's own ``ok`` left out)."""
        i = await self.send("list_subscriptions")
        _, before = await self.until(lambda f: f.get("id") == i and f["type"] == "ok", timeout)
        return before


@asynccontextmanager
async def client(
    sim: KalshiSim, hdrs: dict[str, str] | None = None, **kw: Any
) -> AsyncIterator[Client]:
    # A client that stopped reading never sees the server's close frame (its queue is full),
    # so do not wait the default 10 s for it when a test ends.
    kw.setdefault("close_timeout", 0.5)
    async with connect(
        sim.ws_url, additional_headers=hdrs if hdrs is not None else headers(), **kw
    ) as ws:
        yield Client(ws)


def tickers(sim: KalshiSim, n: int, active_only: bool = True) -> list[str]:
    ms = [m.ticker for m in sim.markets if not active_only or m.status == "active"]
    return ms[:n]


class BookMirror:
    """A client-side book rebuilt from snapshots and deltas, checked on every change."""

    def __init__(self) -> None:
        self.yes: dict[str, dict[Decimal, Decimal]] = {}
        self.no: dict[str, dict[Decimal, Decimal]] = {}

    def snapshot(self, msg: Frame) -> None:
        t = msg["market_ticker"]
        self.yes[t] = {Decimal(p): Decimal(q) for p, q in msg.get("yes_dollars_fp", [])}
        self.no[t] = {Decimal(p): Decimal(q) for p, q in msg.get("no_dollars_fp", [])}
        for side in ("yes_dollars_fp", "no_dollars_fp"):
            if side in msg:
                prices = [Decimal(p) for p, _ in msg[side]]
                assert prices == sorted(prices) and prices, "levels ascend, empty sides are absent"
        self.check(t)

    def delta(self, msg: Frame) -> None:
        t = msg["market_ticker"]
        side = self.yes[t] if msg["side"] == "yes" else self.no[t]
        p, d = Decimal(msg["price_dollars"]), Decimal(msg["delta_fp"])
        q = side.get(p, Decimal(0)) + d
        assert q >= 0, f"negative level {t} {msg}"
        if q == 0:
            del side[p]
        else:
            side[p] = q
        self.check(t)

    def check(self, t: str) -> None:
        if self.yes[t] and self.no[t]:
            assert max(self.yes[t]) + max(self.no[t]) < 1, f"crossed book {t}"

    def levels(self, t: str, side: str) -> tuple[tuple[Decimal, Decimal], ...]:
        d = self.yes[t] if side == "yes" else self.no[t]
        return tuple(sorted(d.items()))


def now_ms() -> int:
    return time.time_ns() // 1_000_000
