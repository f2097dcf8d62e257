"""The built-in Kalshi exchange simulator (``ssmd sim kalshi``, and ``ssmd up``'s default feed).

Protocol-faithful (WebSocket v2 commands, frames and error codes, RSA-PSS handshake check,
REST v2 market data), deterministic for a seed and start time, rate-controlled, with fault
injection and the true order book of every market for tests. Its data is simulated.
"""

from ssmd.sim.kalshi.book import TrueBook
from ssmd.sim.kalshi.config import SimConfig
from ssmd.sim.kalshi.faults import Fault, FaultKind
from ssmd.sim.kalshi.keys import demo_credentials_paths, ensure_demo_credentials
from ssmd.sim.kalshi.server import KalshiSim, MarketInfo

__all__ = [
    "Fault",
    "FaultKind",
    "KalshiSim",
    "MarketInfo",
    "SimConfig",
    "TrueBook",
    "demo_credentials_paths",
    "ensure_demo_credentials",
]
