"""Simulator settings. One frozen object, shared by the CLI, ``ssmd up`` and tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ssmd.sim.kalshi.faults import Fault


@dataclass(frozen=True)
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port (KalshiSim.port reports the real one)
    seed: int = 1
    markets: int = 50
    # Total exchange frames per second across all markets (deltas, trades, tickers,
    # lifecycle), paced against the wall clock. 0 = as fast as the clients take them.
    rate: float = 200.0
    # Virtual clock anchor (Unix ms) for every timestamp in the data. None = wall clock at
    # start. With a fixed value, the same seed and the same commands give the same bytes.
    start_ms: int | None = None
    # Virtual frames per second that timestamps advance by when rate=0.
    nominal_rate: float = 1000.0
    data_dir: Path = Path("data/sim")
    # Accepted API keys: key id -> RSA public key. Empty: a demo key pair is created (or
    # reused) in data_dir and its private key written there for clients to use.
    keys: Mapping[str, RSAPublicKey] = field(default_factory=dict)
    allow_unauthenticated: bool = False  # legacy optional auth: unsigned connections get error 9
    auth_max_skew_s: float = 30.0
    ping_interval_s: float = 10.0
    pong_timeout_s: float = 20.0
    faults: Sequence[Fault] = ()
    # Virtual seconds between lifecycle actions (create/activate, determine/settle, pause).
    # 0 disables lifecycle changes.
    lifecycle_interval_s: float = 60.0
    paused: bool = False  # start with the engine paused (KalshiSim.resume() / step())
    record_frames: bool = False  # keep every frame sent, per connection (sent_frames)
    max_queue_frames: int = 20_000  # per connection, before error 25 drops a subscription
    write_buffer_high: int = 1 << 20  # bytes in the socket's send buffer before queueing
    max_markets_per_subscription: int = 100_000  # error 26 above this
    max_commands_per_s: float | None = None  # per connection; error 27 above this
    emit_already_subscribed: bool = False  # legacy error 6 (retired by Kalshi in 2026)
    trade_history: int = 100_000  # trades kept for REST /markets/trades

    def __post_init__(self) -> None:
        if self.markets < 1:
            raise ValueError("markets must be >= 1")
        if self.rate < 0:
            raise ValueError("rate must be >= 0 (0 = as fast as possible)")
        if self.nominal_rate <= 0:
            raise ValueError("nominal_rate must be > 0")
        if self.ping_interval_s <= 0 or self.pong_timeout_s <= 0:
            raise ValueError("ping interval and pong timeout must be > 0")
        if self.lifecycle_interval_s < 0:
            raise ValueError("lifecycle_interval_s must be >= 0")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0-65535")
        if self.max_queue_frames < 1:
            raise ValueError("max_queue_frames must be >= 1")
