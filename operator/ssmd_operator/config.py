"""Operator settings from the environment (read once, when the handlers are imported)."""

from __future__ import annotations

import os


def _float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


# The timer that repairs drift, follows the schedule and refreshes the registry.
RECONCILE_INTERVAL_S = _float("SSMD_OPERATOR_INTERVAL", 30.0)
# Delay before a handler retries when NATS is unreachable.
RETRY_DELAY_S = _float("SSMD_OPERATOR_RETRY", 10.0)
FEED_INTERVAL_S = _float("SSMD_OPERATOR_FEED_INTERVAL", 60.0)
FINALIZER = "ssmd.io/finalizer"
