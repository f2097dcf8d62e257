"""The venue-independent capture pipeline: publishing, spill, gaps, dead letters, metrics.

The venue-specific parts (WebSocket, REST, market universe) live in ``ssmd.feeds.<venue>``.
"""

from __future__ import annotations

__all__ = ["Connector"]


def __getattr__(name: str) -> object:
    # Lazy, so `import ssmd.connector.spill` does not pull in websockets/aiohttp.
    if name == "Connector":
        from ssmd.connector.service import Connector

        return Connector
    raise AttributeError(name)
