"""Kalshi: WebSocket v2 market data and REST v2 (see shared/reference/kalshi-protocol.md)."""

WS_PATH = "/trade-api/ws/v2"
REST_PREFIX = "/trade-api/v2"

__all__ = ["REST_PREFIX", "WS_PATH"]
