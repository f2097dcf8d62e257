"""Admin HTTP API: faults, connections, true books and engine control (tests, operators)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from ssmd.sim.kalshi.faults import Fault

if TYPE_CHECKING:
    from ssmd.sim.kalshi.server import KalshiSim

PREFIX = "/admin"


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(
            text='{"error":"body is not JSON"}', content_type="application/json"
        ) from None


def admin_routes(sim: KalshiSim) -> list[web.RouteDef]:
    async def index(request: web.Request) -> web.Response:
        return _json(
            {
                "simulated": True,
                "endpoints": [
                    "GET /admin/stats",
                    "GET|POST|DELETE /admin/faults",
                    "GET /admin/connections",
                    "GET /admin/books",
                    "GET /admin/books/{ticker}",
                    "POST /admin/pause",
                    "POST /admin/resume",
                    "POST /admin/step {n}",
                ],
            }
        )

    async def stats(request: web.Request) -> web.Response:
        return _json(sim.stats())

    async def get_faults(request: web.Request) -> web.Response:
        return _json({"faults": sim.faults()})

    async def post_faults(request: web.Request) -> web.Response:
        body = await _body(request)
        items = body if isinstance(body, list) else [body]
        try:
            faults = [Fault.from_dict(item) for item in items]
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        for f in faults:
            sim.inject(f)
        return _json({"injected": [f.to_dict() for f in faults], "faults": sim.faults()})

    async def delete_faults(request: web.Request) -> web.Response:
        sim.clear_faults()
        return _json({"faults": []})

    async def connections(request: web.Request) -> web.Response:
        return _json({"connections": sim.connections()})

    async def books(request: web.Request) -> web.Response:
        return _json({"books": [b.to_dict() for b in sim.true_books().values()]})

    async def book(request: web.Request) -> web.Response:
        ticker = request.match_info["ticker"]
        try:
            return _json({"book": sim.true_book(ticker).to_dict()})
        except KeyError:
            return _json({"error": f"market not found: {ticker}"}, 404)

    async def pause(request: web.Request) -> web.Response:
        sim.pause()
        return _json({"paused": True})

    async def resume(request: web.Request) -> web.Response:
        sim.resume()
        return _json({"paused": False})

    async def step(request: web.Request) -> web.Response:
        body = await _body(request)
        n = body.get("n", 1) if isinstance(body, dict) else None
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1_000_000:
            return _json({"error": "n must be an integer 1-1000000"}, 400)
        return _json({"messages": await sim.step(n), "virtual_now_ms": sim.virtual_now_ms})

    p = PREFIX
    return [
        web.get(p, index),
        web.get(f"{p}/stats", stats),
        web.get(f"{p}/faults", get_faults),
        web.post(f"{p}/faults", post_faults),
        web.delete(f"{p}/faults", delete_faults),
        web.get(f"{p}/connections", connections),
        web.get(f"{p}/books", books),
        web.get(f"{p}/books/{{ticker}}", book),
        web.post(f"{p}/pause", pause),
        web.post(f"{p}/resume", resume),
        web.post(f"{p}/step", step),
    ]
