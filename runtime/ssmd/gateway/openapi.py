"""The OpenAPI 3.1 document of the gateway (served at ``/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

NUMBERS = (
    "Prices are JSON numbers in dollars per YES contract (0..1), sizes are contract counts. "
    "Internally every price and size is an exact Decimal; it is converted to a JSON number "
    "(IEEE double) only when written: Kalshi prices have at most 4 decimals and sizes 2, "
    "which doubles print back exactly. Bids are YES bids; asks are 1 - NO bid. Checkpoints "
    "on NATS (`{env}.{feed}.book.{ticker}`) keep exact decimal strings."
)

_level = {
    "type": "array",
    "items": {"type": "number"},
    "minItems": 2,
    "maxItems": 2,
    "description": "[price_dollars, size_contracts]",
}
_err = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}


def _resp(desc: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"description": desc}
    if schema is not None:
        r["content"] = {"application/json": {"schema": schema}}
    return r


def _q(name: str, desc: str, typ: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": desc,
        "schema": {"type": typ},
    }


_ticker = {"name": "ticker", "in": "path", "required": True, "schema": {"type": "string"}}
_std = {
    "400": _resp("Bad request", _err),
    "401": _resp("Missing or wrong API key", _err),
    "404": _resp("Not found", _err),
}

BOOK = {
    "type": "object",
    "properties": {
        "symbol": {"type": "string"},
        "seq": {
            "type": "integer",
            "description": "JetStream sequence of the last frame in the book",
        },
        "state": {"type": "string", "enum": ["live", "stale", "pending"]},
        "stale": {"type": "boolean"},
        "best_bid": {"type": ["number", "null"]},
        "best_ask": {"type": ["number", "null"]},
        "bids": {"type": "array", "items": _level, "description": "best (highest) first"},
        "asks": {"type": "array", "items": _level, "description": "best (lowest) first"},
    },
}


def document(server_url: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "ssmd gateway",
            "version": "1",
            "description": (
                "Live prediction-market data: order books, trades, tickers, lifecycle.\n\n"
                + NUMBERS
                + "\n\nWebSocket: `GET /v1/stream?symbols=A,B[&mode=realtime|conflated|latest"
                '&interval_ms=N]`. Send `{"action":"subscribe"|"unsubscribe"|"snapshot",'
                '"symbols":[...],"mode":...,"interval_ms":...}`. Events: `orderbook` '
                "(`action` snapshot then update; update `changes` are [side, price, new_size], "
                "size 0 removes the level), `trade`, `ticker`, `lifecycle`, `notice` "
                "(`stale`, `resynced`, `dropped`, `disconnecting`), `error`. In conflated mode "
                "books and tickers arrive at most once per interval (full latest state, with "
                "an `interval` counter); trades and lifecycle events are never conflated. In "
                "latest mode only the newest state is kept per symbol while the client is busy."
                "\n\nAuth (when enabled): `Authorization: Bearer KEY`, `X-API-Key: KEY` or "
                "`?api_key=KEY`."
            ),
        },
        "paths": {
            "/v1/markets": {
                "get": {
                    "summary": "List markets (from the secmaster)",
                    "parameters": [
                        _q("status", "open|paused|closed|settled|... "),
                        _q("series", "series ticker"),
                        _q("category", "category (case-insensitive)"),
                        _q("event", "event ticker"),
                        _q("limit", "max rows", "integer"),
                    ],
                    "responses": {"200": _resp("Markets"), **_std},
                }
            },
            "/v1/markets/{ticker}": {
                "get": {
                    "summary": "One market: price, order-book summary, contract times, data quality, links, hints",
                    "parameters": [_ticker],
                    "responses": {"200": _resp("Market"), **_std},
                }
            },
            "/v1/markets/{ticker}/trades": {
                "get": {
                    "summary": "Recent trades, newest first",
                    "parameters": [
                        _ticker,
                        _q("limit", "1-500 (the gateway keeps the last 500 per market)", "integer"),
                        _q("since", "exchange time, Unix ms", "integer"),
                    ],
                    "responses": {"200": _resp("Trades"), **_std},
                }
            },
            "/v1/markets/{ticker}/orderbook": {
                "get": {
                    "summary": "Order book (YES perspective)",
                    "parameters": [_ticker, _q("depth", "levels per side, 0 = all", "integer")],
                    "responses": {"200": _resp("Book", BOOK), **_std},
                }
            },
            "/v1/health": {"get": {"summary": "Health", "responses": {"200": _resp("OK")}}},
            "/v1/meta/feeds": {
                "get": {"summary": "Feeds served", "responses": {"200": _resp("Feeds")}}
            },
            "/v1/meta/inventory": {
                "get": {
                    "summary": "Archive inventory per day",
                    "responses": {"200": _resp("Inventory")},
                }
            },
            "/v1/meta/gaps/{feed}": {
                "get": {
                    "summary": "Recent gap records of a feed",
                    "parameters": [
                        {
                            "name": "feed",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {"200": _resp("Gaps"), **_std},
                }
            },
            "/v1/stream": {
                "get": {
                    "summary": "WebSocket stream (upgrade)",
                    "responses": {
                        "101": _resp("Switching protocols"),
                        "401": _resp("Unauthorized", _err),
                    },
                }
            },
            "/v1/admin/clients": {
                "get": {"summary": "Connected clients", "responses": {"200": _resp("Clients")}}
            },
            "/v1/admin/clients/{id}": {
                "get": {"summary": "One client", "responses": {"200": _resp("Client"), **_std}}
            },
            "/v1/admin/clients/{id}/disconnect": {
                "post": {
                    "summary": "Disconnect a client",
                    "responses": {"200": _resp("OK"), **_std},
                }
            },
            "/v1/admin/clients/{id}/mode": {
                "post": {
                    "summary": "Set a client's mode (and policy)",
                    "responses": {"200": _resp("OK"), **_std},
                }
            },
            "/metrics": {
                "get": {"summary": "Prometheus metrics", "responses": {"200": _resp("text/plain")}}
            },
        },
        "components": {"schemas": {"OrderBook": BOOK, "Error": _err}},
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
