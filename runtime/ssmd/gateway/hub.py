"""The fan-out: which clients want which symbol, and delivery per mode."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ssmd.gateway.clients import Client, ClientState, StateKey

log = logging.getLogger("ssmd.gateway.hub")

# Renders the newest value of a piece of state for conflated/latest clients.
Renderer = Callable[[StateKey], bytes | None]


class Hub:
    def __init__(self, render: Renderer) -> None:
        self.clients: dict[str, Client] = {}
        self._by_symbol: dict[str, set[Client]] = {}
        self._all: set[Client] = set()  # subscribed to "*"
        self.render = render
        self.events = 0
        self.sent_closed = 0  # messages sent by clients that have gone (for the totals)
        self.dropped_closed = 0
        self.disconnects: dict[str, int] = {}
        self._flushers: dict[str, asyncio.Task[None]] = {}

    # -- membership ---------------------------------------------------------------------------

    def add(self, c: Client) -> None:
        self.clients[c.id] = c

    def remove(self, c: Client) -> None:
        self.clients.pop(c.id, None)
        self.unsubscribe(c, list(c.symbols))
        self.sent_closed += c.sent
        self.dropped_closed += c.dropped
        t = self._flushers.pop(c.id, None)
        if t is not None:
            t.cancel()
        if c.close_reason:
            key = "slow_consumer" if "slow" in c.close_reason else "admin"
            self.disconnects[key] = self.disconnects.get(key, 0) + 1

    def subscribe(self, c: Client, symbols: list[str]) -> None:
        for s in symbols:
            c.symbols.add(s)
            if s == "*":
                self._all.add(c)
            else:
                self._by_symbol.setdefault(s, set()).add(c)

    def unsubscribe(self, c: Client, symbols: list[str]) -> None:
        for s in symbols:
            c.symbols.discard(s)
            if s == "*":
                self._all.discard(c)
                continue
            subs = self._by_symbol.get(s)
            if subs is not None:
                subs.discard(c)
                if not subs:
                    del self._by_symbol[s]
            c.dirty.pop(("book", s), None)
            c.dirty.pop(("ticker", s), None)
            c.resnap.discard(s)

    def set_mode(self, c: Client, mode: str, interval_ms: int) -> None:
        c.mode, c.interval_ms = mode, interval_ms  # type: ignore[assignment]
        t = self._flushers.pop(c.id, None)
        if t is not None:
            t.cancel()
        if mode == "conflated":
            self._flushers[c.id] = asyncio.create_task(self._flush_loop(c), name=f"conflate-{c.id}")
        elif mode == "latest" and c.dirty:
            c.mark(next(iter(c.dirty)))  # wake the writer

    # -- delivery ------------------------------------------------------------------------------

    def _targets(self, symbol: str) -> list[Client]:
        subs = self._by_symbol.get(symbol)
        if not self._all:
            return list(subs) if subs else []
        return list(self._all.union(subs or ()))

    def event(self, symbol: str, payload: bytes) -> None:
        self.events += 1
        for c in self._targets(symbol):
            c.offer(payload, None)

    def state(self, symbol: str, kind: str, payload: bytes | None) -> None:
        self.events += 1
        key = (kind, symbol)
        for c in self._targets(symbol):
            if c.mode == "realtime":
                if payload is not None:
                    c.offer(payload, symbol if kind == "book" else None)
            else:
                c.mark(key)

    async def _flush_loop(self, c: Client) -> None:
        """Conflated mode: every interval, the latest value of each changed state, once."""
        try:
            while c.state is not ClientState.DISCONNECTING:
                await asyncio.sleep(c.interval_ms / 1000)
                if not c.dirty:
                    continue
                c.flushes += 1
                prefix = b'{"interval":%d,' % c.flushes
                keys = list(c.dirty)
                c.dirty.clear()
                for key in keys:
                    body = self.render(key)
                    if body is not None:
                        c.offer(prefix + body[1:], key[1] if key[0] == "book" else None)
        except asyncio.CancelledError:
            pass

    async def close(self) -> None:
        for t in list(self._flushers.values()):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._flushers.clear()

    # -- totals -------------------------------------------------------------------------------

    @property
    def sent_total(self) -> int:
        return self.sent_closed + sum(c.sent for c in self.clients.values())

    @property
    def dropped_total(self) -> int:
        return self.dropped_closed + sum(c.dropped for c in self.clients.values())
