"""Protocol vocabulary: channels, frame kinds and error codes (kalshi-protocol.md §2)."""

from __future__ import annotations

# Channels that carry simulated data, as indices into per-channel tables.
CH_BOOK, CH_TICKER, CH_TRADE, CH_LIFECYCLE = 0, 1, 2, 3
DATA_CHANNELS: dict[str, int] = {
    "orderbook_delta": CH_BOOK,
    "ticker": CH_TICKER,
    "trade": CH_TRADE,
    "market_lifecycle_v2": CH_LIFECYCLE,
}
# Channels in the current spec that the simulator accepts but never feeds: it has no
# user orders, combos or index prices. A subscription to them is acknowledged and silent.
SILENT_CHANNELS = frozenset(
    {
        "fill",
        "market_positions",
        "user_orders",
        "order_group_updates",
        "communications",
        "multivariate",
        "multivariate_market_lifecycle",
        "cfbenchmarks_value",
        "cfbenchmarks_value_5hz",
        "pyth_value",
    }
)
KNOWN_CHANNELS = frozenset(DATA_CHANNELS) | SILENT_CHANNELS
PRIVATE_CHANNELS = frozenset(
    {
        "orderbook_delta",
        "fill",
        "market_positions",
        "user_orders",
        "order_group_updates",
        "communications",
    }
)
# Channels whose subscriptions ignore market filters (always every market).
UNFILTERED_CHANNELS = frozenset(
    {
        "market_lifecycle_v2",
        "multivariate_market_lifecycle",
        "communications",
        "order_group_updates",
        "multivariate",
    }
)
SEQ_CHANNELS = frozenset({"orderbook_delta", "order_group_updates"})

# Frame kinds: the index of a subscription's prefix for that frame type.
K_DELTA, K_SNAPSHOT, K_TICKER, K_TRADE, K_MARKET_LC, K_EVENT_LC = 0, 1, 2, 3, 4, 5
SEQ_KINDS = 1  # kinds <= this carry seq
FRAME_TYPES = (
    "orderbook_delta",
    "orderbook_snapshot",
    "ticker",
    "trade",
    "market_lifecycle_v2",
    "event_lifecycle",
)

ERRORS: dict[int, str] = {
    1: "Unable to process message",
    2: "Params required",
    3: "Channels required",
    4: "Subscription IDs required",
    5: "Unknown command",
    6: "Already subscribed",
    7: "Unknown subscription ID",
    8: "Unknown channel name",
    9: "Authentication required",
    10: "Channel error",
    11: "Invalid parameter",
    12: "Exactly one subscription ID is required",
    13: "Unsupported action",
    14: "Market Ticker required",
    15: "Action required",
    16: "Market not found",
    17: "Internal error",
    18: "Command timeout",
    19: "shard_factor must be > 0",
    20: "shard_factor is required when shard_key is set",
    21: "shard_key must be >= 0 and < shard_factor",
    22: "shard_factor must be <= 100",
    24: "Index IDs required",
    25: "Subscription buffer overflow",
    26: "Subscription market limit exceeded",
    27: "Too many requests",
}
