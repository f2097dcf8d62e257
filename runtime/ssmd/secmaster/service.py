"""``ssmd secmaster``: sync at start and every ``spec.secmaster.syncInterval``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from nats.aio.client import Client

from ssmd.runtime import RuntimeContext
from ssmd.secmaster.store import MarketStore, secmaster_kv
from ssmd.secmaster.sync import KalshiRest, SyncResult, sync_once
from ssmd.spec.types import duration_seconds
from ssmd.transport.connect import connect
from ssmd.transport.kv import StatusReporter
from ssmd.transport.streams import ensure_streams

log = logging.getLogger("ssmd.secmaster")


def rest_url(ctx: RuntimeContext) -> str:
    """The REST base URL: resolved (simulator) first, then the spec, then derived from WS."""
    if ctx.feed_rest_url:
        return ctx.feed_rest_url
    feed = ctx.env.spec.feed
    if feed.rest_endpoint:
        return feed.rest_endpoint
    ws = ctx.feed_ws_url or feed.endpoint
    if ws.startswith(("ws://", "wss://")):
        base = "http" + ws[2:]
        return base.replace("/trade-api/ws/v2", "/trade-api/v2").replace(
            "external-api-ws", "external-api"
        )
    raise ValueError("no REST endpoint: set spec.feed.restEndpoint")


class Secmaster:
    name = "secmaster"

    def __init__(self, ctx: RuntimeContext, *, interval: float | None = None) -> None:
        self.ctx = ctx
        spec = ctx.env.spec
        self.interval = (
            interval if interval is not None else duration_seconds(spec.secmaster.sync_interval)
        )
        self.store = MarketStore()
        self._nc: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._status: StatusReporter | None = None
        self.last: SyncResult | None = None
        self.last_error: str | None = None
        self.last_sync_at: float | None = None
        self.syncs = 0
        self.synced = asyncio.Event()

    def snapshot(self) -> dict[str, Any]:
        return {
            "markets": len(self.store.markets),
            "syncs": self.syncs,
            "last_sync": self.last.as_dict() if self.last else None,
            "last_sync_at": self.last_sync_at,
            "last_error": self.last_error,
        }

    async def start(self) -> None:
        ctx = self.ctx
        self._nc = await connect(ctx.nats_url, name="ssmd-secmaster")
        js = self._nc.jetstream()
        await ensure_streams(js, ctx.env)
        await self.store.start(js, ctx.name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.store.loaded.wait(), 10)
        self._status = StatusReporter(
            js, ctx.name, self.name, self.snapshot, source=ctx.source, interval=ctx.status_interval
        )
        self._status.start()
        self._task = asyncio.create_task(self._run(), name="secmaster-sync")

    async def sync(self) -> SyncResult:
        assert self._nc is not None
        js = self._nc.jetstream()
        kv = await secmaster_kv(js, self.ctx.name)
        async with KalshiRest(
            rest_url(self.ctx), rate_per_s=self.ctx.env.spec.connector.rest_rate_per_s
        ) as rest:
            res = await sync_once(js, kv, self.store, rest, env=self.ctx.name, feed=self.ctx.feed)
        self.last, self.last_sync_at, self.last_error = res, time.time(), None
        self.syncs += 1
        self.synced.set()
        log.info("secmaster sync: %s", res.as_dict())
        return res

    async def _run(self) -> None:
        while True:
            try:
                await self.sync()
            except Exception as exc:  # keep the last good state; try again next interval
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                log.warning("secmaster sync failed: %s", self.last_error)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._status is not None:
            await self._status.stop()
        await self.store.stop()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
