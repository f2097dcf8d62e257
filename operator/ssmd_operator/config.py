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
# Read the day manifests of an S3 archive for the status inventory (off: use the archiver's
# status document only, e.g. where the operator must not reach the object store).
ARCHIVE_INVENTORY = os.environ.get("SSMD_OPERATOR_ARCHIVE_INVENTORY", "1") not in ("0", "false", "")
