"""``ssmd gateway``: the Gateway component (NATS → books → WebSocket + REST on one port)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiohttp import web
from nats.aio.client import Client as Nats

from ssmd.books.builder import BookState
from ssmd.gateway import metrics, openapi
from ssmd.gateway.auth import ApiKeyAuth
from ssmd.gateway.clients import StateKey
from ssmd.gateway.feed import GatewayFeed
from ssmd.gateway.hub import Hub
from ssmd.gateway.rest import Rest, _json
from ssmd.gateway.stream import stream_handler
from ssmd.keys.resolve import KeyResolver
from ssmd.runtime import RuntimeContext
from ssmd.secmaster.store import MarketStore
from ssmd.spec.types import duration_seconds, parse_size
from ssmd.transport.connect import connect
from ssmd.transport.kv import StatusReporter
from ssmd.transport.streams import ensure_streams

log = logging.getLogger("ssmd.gateway")


class Gateway:
    name = "gateway"

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        host: str | None = None,
        port: int | None = None,
        resolver: KeyResolver | None = None,
    ) -> None:
        self.ctx = ctx
        self.settings = ctx.env.spec.gateway
        self.host = host if host is not None else self.settings.host
        self.port = port if port is not None else self.settings.port
        self.max_bytes = parse_size(self.settings.buffer.max_bytes)
        self.slow_after_s = duration_seconds(self.settings.slow_consumer_after)
        self.auth = ApiKeyAuth(ctx.env, resolver=resolver)
        self.hub = Hub(self._render)
        self.store = MarketStore()
        self._nc: Nats | None = None
        self.feed: GatewayFeed = None  # type: ignore[assignment]  # set in start()
        self._runner: web.AppRunner | None = None
        self._status: StatusReporter | None = None
        self.started_at = time.time()
        self._registry = metrics.registry_for(self)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _render(self, key: StateKey) -> bytes | None:
        kind, symbol = key
        if kind == "book":
            return self.feed.render_book(symbol)
        m = self.feed.markets.get(symbol)
        return m.ticker_payload if m is not None else None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/stream", self._stream)
        app.router.add_routes(Rest(self).routes())
        app.router.add_get("/v1/openapi.json", self._openapi)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        return await stream_handler(self, request)

    async def _openapi(self, request: web.Request) -> web.Response:
        return _json(openapi.document(self.http_url))

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.render(self._registry), content_type="text/plain", charset="utf-8"
        )

    def health(self) -> dict[str, Any]:
        f = self.feed
        states = [e.state for e in f.builder.books.values()] if f else []
        age = None if not f or f.last_frame_at is None else round(time.time() - f.last_frame_at, 3)
        stale = states.count(BookState.STALE)
        ok = f is not None and f.ready.is_set() and self._nc is not None and self._nc.is_connected
        return {
            "status": "ok" if ok and not stale else ("degraded" if ok else "starting"),
            "source": self.ctx.source,
            "nats_connected": bool(self._nc and self._nc.is_connected),
            "feed": {
                "last_seq": f.last_seq if f else 0,
                "last_frame_age_s": age,
                "frames": f.frames if f else 0,
                "checkpoints_loaded": f.checkpoints_loaded if f else 0,
            },
            "books": {
                "live": states.count(BookState.LIVE),
                "stale": stale,
                "pending": states.count(BookState.PENDING),
            },
            "clients": len(self.hub.clients),
            "markets": len(self.store.markets),
            "uptime_s": round(time.time() - self.started_at, 1),
        }

    def snapshot(self) -> dict[str, Any]:
        h = self.health()
        return {
            "url": self.url,
            "status": h["status"],
            "clients": h["clients"],
            "books": h["books"],
            "last_seq": h["feed"]["last_seq"],
            "messages_sent": self.hub.sent_total,
            "messages_dropped": self.hub.dropped_total,
        }

    async def start(self) -> None:
        ctx = self.ctx
        self._nc = await connect(ctx.nats_url, name="ssmd-gateway")
        js = self._nc.jetstream()
        await ensure_streams(js, ctx.env)
        await self.store.start(js, ctx.name)
        self.feed = GatewayFeed(js, ctx.name, ctx.feed, self.hub)
        await self.feed.start()
        # Clients were told to go in stop(); do not wait aiohttp's default minute for them.
        self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=3.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        self._status = StatusReporter(
            js, ctx.name, self.name, self.snapshot, source=ctx.source, interval=ctx.status_interval
        )
        self._status.start()
        log.info("gateway listening on %s (%s data)", self.url, ctx.source)

    async def stop(self) -> None:
        if self._status is not None:
            await self._status.stop()
        for c in list(self.hub.clients.values()):
            c.disconnect("gateway shutting down")
        await self.hub.close()
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._runner.cleanup(), 10)
        if self.feed is not None:
            await self.feed.stop()
        await self.store.stop()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
