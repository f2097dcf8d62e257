"""WebSocket ``/v1/stream``: the client protocol.

Client → server (JSON text):

* ``{"action":"subscribe","symbols":[...],"mode":"realtime"|"conflated"|"latest","interval_ms":N}``
* ``{"action":"unsubscribe","symbols":[...]}``
* ``{"action":"snapshot","symbols":[...]}``

An optional ``"id"`` is echoed. A bad request gets ``{"type":"error",...}``, never a closed
socket. Server → client: ``subscribed``, ``unsubscribed``, ``orderbook`` (``action``
``snapshot`` then ``update``), ``trade``, ``ticker``, ``lifecycle``, ``notice`` (``stale``,
``resynced``, ``dropped``) and ``error``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web

from ssmd.gateway.clients import MODES, Client, ClientState

if TYPE_CHECKING:
    from ssmd.gateway.service import Gateway

log = logging.getLogger("ssmd.gateway.stream")

MAX_SYMBOLS = 10_000
SOCKET_SNDBUF = 256 * 1024
MIN_INTERVAL_MS, MAX_INTERVAL_MS = 10, 60_000
_TEXT = WSMsgType.TEXT


class BadRequest(ValueError):
    pass


def _symbols(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [s for s in value.split(",") if s]
    if not isinstance(value, list) or not value:
        raise BadRequest('symbols must be a non-empty list of market tickers (or "*")')
    if len(value) > MAX_SYMBOLS:
        raise BadRequest(f"too many symbols (at most {MAX_SYMBOLS})")
    out = []
    for s in value:
        if not isinstance(s, str) or not s or len(s) > 200:
            raise BadRequest("every symbol must be a non-empty string")
        out.append(s)
    return out


def parse_mode(mode: Any, interval: Any) -> tuple[str, int]:
    if mode is None:
        mode = "realtime"
    if mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}")
    if interval is None:
        interval = 1000
    if isinstance(interval, str) and interval.isdigit():
        interval = int(interval)
    if not isinstance(interval, int) or isinstance(interval, bool):
        raise BadRequest("interval_ms must be an integer")
    if not MIN_INTERVAL_MS <= interval <= MAX_INTERVAL_MS:
        raise BadRequest(f"interval_ms must be between {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS}")
    return mode, interval


def error(message: str, code: str = "bad_request", req_id: Any = None) -> bytes:
    d: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if req_id is not None:
        d["id"] = req_id
    return orjson.dumps(d)


async def stream_handler(gw: Gateway, request: web.Request) -> web.StreamResponse:
    user = gw.auth.check(request)
    if user is None:
        return web.json_response(
            {"error": "unauthorized", "message": "a valid API key is required"}, status=401
        )
    if len(gw.hub.clients) >= gw.settings.max_clients:
        return web.json_response(
            {"error": "too_many_clients", "message": "the gateway is at its client limit"},
            status=503,
        )
    # No permessage-deflate: it costs 30-45% of the fan-out per client (servers.md), and
    # the same bytes go to every client, compressed separately for each.
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=1 << 20, compress=False)
    await ws.prepare(request)
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        # Bound what the kernel holds per client (it would autotune to MBs), so a slow
        # client shows up in the gateway's own buffer, where the policy applies.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_SNDBUF)
    buf = gw.settings.buffer
    c = Client(
        remote=request.remote or "?",
        max_messages=buf.max_messages,
        max_bytes=gw.max_bytes,
        policy=buf.policy,
        slow_after_s=gw.slow_after_s,
        user=None if user == "anonymous" else user,
    )
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()

    def abort_if_stuck() -> None:
        # A writer blocked on a full socket cannot send a close frame: drop the connection.
        if not ws.closed and request.transport is not None:
            request.transport.abort()

    def on_wake() -> None:
        wake.set()
        if c.state is ClientState.DISCONNECTING and not c.abort_armed:
            c.abort_armed = True
            loop.call_later(1.5, abort_if_stuck)

    c.wake_cb = on_wake
    gw.hub.add(c)
    writer = asyncio.create_task(_writer(gw, c, ws, wake), name=f"ws-writer-{c.id}")
    try:
        q = request.query
        if "symbols" in q:
            try:
                mode, interval = parse_mode(q.get("mode"), q.get("interval_ms"))
                _subscribe(gw, c, _symbols(q["symbols"]), mode, interval, None)
            except BadRequest as exc:
                c.offer(error(str(exc)))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT or msg.type == WSMsgType.BINARY:
                _on_request(gw, c, msg.data)
            elif msg.type == WSMsgType.ERROR:
                break
            if c.state is ClientState.DISCONNECTING:
                break
    finally:
        if c.state is not ClientState.DISCONNECTING:
            c.state = ClientState.DISCONNECTING
        wake.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(writer, 2.0)
        writer.cancel()
        gw.hub.remove(c)
        if not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
    return ws


def _on_request(gw: Gateway, c: Client, data: str | bytes) -> None:
    try:
        req = orjson.loads(data)
    except orjson.JSONDecodeError:
        c.offer(error("request is not valid JSON"))
        return
    if not isinstance(req, dict):
        c.offer(error("request must be a JSON object with an action"))
        return
    rid = req.get("id")
    action = req.get("action")
    try:
        if action == "subscribe":
            mode, interval = parse_mode(
                req.get("mode", c.mode), req.get("interval_ms", c.interval_ms)
            )
            _subscribe(gw, c, _symbols(req.get("symbols")), mode, interval, rid)
        elif action == "unsubscribe":
            syms = _symbols(req.get("symbols"))
            gw.hub.unsubscribe(c, syms)
            c.offer(orjson.dumps({"type": "unsubscribed", "symbols": syms, "id": rid}))
        elif action == "snapshot":
            for s in _symbols(req.get("symbols")):
                _send_state(gw, c, s, rid, explicit=True)
        else:
            raise BadRequest(
                f"unknown action {str(action)[:40]!r}: use subscribe, unsubscribe or snapshot"
            )
    except BadRequest as exc:
        c.offer(error(str(exc), req_id=rid))


def _subscribe(gw: Gateway, c: Client, syms: list[str], mode: str, interval: int, rid: Any) -> None:
    if mode != c.mode or (mode == "conflated" and interval != c.interval_ms):
        gw.hub.set_mode(c, mode, interval)
    new = [s for s in syms if s not in c.symbols]
    gw.hub.subscribe(c, syms)
    known = gw.feed.builder.books
    c.offer(
        orjson.dumps(
            {
                "type": "subscribed",
                "id": rid,
                "symbols": syms,
                "mode": c.mode,
                "interval_ms": c.interval_ms if c.mode == "conflated" else None,
                "no_book_yet": [s for s in syms if s != "*" and s not in known],
            }
        )
    )
    for s in new:
        if s != "*":
            _send_state(gw, c, s, rid, explicit=False)


def _send_state(gw: Gateway, c: Client, symbol: str, rid: Any, *, explicit: bool) -> None:
    """The current full book (and ticker) of ``symbol``: on subscribe and on request."""
    body = gw.feed.render_book(symbol)
    if body is not None:
        c.offer(body, symbol)
    elif explicit:
        c.offer(error(f"no order book for {symbol[:100]!r} yet", "not_found", rid))
    m = gw.feed.markets.get(symbol)
    if m is not None and m.ticker_payload is not None:
        c.offer(m.ticker_payload)


def _text_frame_header(n: int) -> bytes:
    # Server frames are unmasked: FIN + text opcode, then the payload length.
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big")
    return bytes((0x81, 127)) + n.to_bytes(8, "big")


class _RawSink:
    """Writes whole WebSocket frames straight to the transport, many per write.

    One ``transport.write`` per batch instead of one (and a syscall) per message is what
    lets the fan-out keep up with a bare broadcast server. Flow control is aiohttp's own:
    when the transport pauses writing, wait on the protocol's drain. Frames are complete
    and compression is off, so this interleaves safely with aiohttp's pings and close."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        writer = getattr(ws, "_writer", None)
        self.transport = getattr(writer, "transport", None)
        self.protocol = getattr(writer, "protocol", None)

    @property
    def usable(self) -> bool:
        return self.transport is not None and hasattr(self.protocol, "_drain_helper")

    async def write(self, chunks: list[bytes]) -> None:
        t = self.transport
        assert t is not None
        if t.is_closing():
            raise ConnectionResetError("client socket closed")
        t.write(b"".join(chunks))
        if self.protocol._paused:  # type: ignore[union-attr]
            await self.protocol._drain_helper()  # type: ignore[union-attr]


_BATCH_BYTES = 256 * 1024


async def _writer(gw: Gateway, c: Client, ws: web.WebSocketResponse, wake: asyncio.Event) -> None:
    """Drains the client's buffer into its socket. The only place that awaits the client."""
    raw = _RawSink(ws)
    send = ws.send_frame
    q = c.queue
    hdr = _text_frame_header
    try:
        while True:
            if c.state is ClientState.DISCONNECTING:
                break
            if (
                not q
                and not c.resnap
                and not c.dropped_unreported
                and not (c.mode == "latest" and c.dirty)
            ):
                wake.clear()
                await wake.wait()
                continue
            if c.dropped_unreported:
                n, c.dropped_unreported = c.dropped_unreported, 0
                await send(
                    orjson.dumps(
                        {"type": "notice", "notice": "dropped", "count": n, "total": c.dropped}
                    ),
                    _TEXT,
                )
            while q:
                if raw.usable:
                    chunks: list[bytes] = []
                    size = count = 0
                    while q and size < _BATCH_BYTES:
                        msg = q.popleft()
                        chunks.append(hdr(len(msg)))
                        chunks.append(msg)
                        size += len(msg)
                        count += 1
                    c.queued_bytes -= size
                    await raw.write(chunks)
                    c.sent += count
                    c.sent_bytes += size
                else:
                    msg = q.popleft()
                    c.queued_bytes -= len(msg)
                    await send(msg, _TEXT)
                    c.sent += 1
                    c.sent_bytes += len(msg)
                if c.state is ClientState.DISCONNECTING:
                    break
            if c.state is ClientState.DISCONNECTING:
                break
            c.drained()
            if c.resnap:
                syms, c.resnap = list(c.resnap), set()
                for s in syms:
                    if c.mode == "realtime":
                        body = gw.feed.render_book(s)
                        if body is not None:
                            c.offer(body)
                    else:
                        c.mark(("book", s))
            if c.mode == "latest" and c.dirty:
                keys = list(c.dirty)
                c.dirty.clear()
                for key in keys:
                    body = gw.hub.render(key)
                    if body is not None:
                        await send(body, _TEXT)
                        c.sent += 1
                        c.sent_bytes += len(body)
    except (ConnectionResetError, RuntimeError, asyncio.CancelledError):
        return
    if c.close_reason and not ws.closed:
        log.info("closing client %s: %s", c.id, c.close_reason)
        with contextlib.suppress(Exception):
            await ws.send_frame(
                orjson.dumps(
                    {"type": "notice", "notice": "disconnecting", "reason": c.close_reason}
                ),
                _TEXT,
            )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(code=1008, message=c.close_reason[:120].encode()), 1.0)
