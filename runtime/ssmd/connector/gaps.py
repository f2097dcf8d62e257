"""Gap records: what the connector knows it did not capture, published to ``{env}.{feed}.gap``.

The archiver reads these (design.md, "exchange" gaps). Causes:

* ``seq_gap``: a subscription's ``seq`` jumped; ``[expected_seq, received_seq)`` is missing.
* ``disconnect`` / ``stall``: the socket closed / went silent; ``start_ns`` is the last frame
  received before, ``end_ns`` the first frame after resubscribing.
* ``subscription_rejected``: the exchange refused or dropped a subscription.
* ``spill_overflow``: JetStream was unavailable and the spill file was full.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

GapCause = Literal["seq_gap", "disconnect", "spill_overflow", "subscription_rejected", "stall"]


@dataclass
class GapRecord:
    cause: GapCause
    conn: str
    sid: int | None = None
    expected_seq: int | None = None
    received_seq: int | None = None
    markets: list[str] = field(default_factory=list)
    start_ns: int | None = None
    end_ns: int | None = None
    detected_ns: int = field(default_factory=time.time_ns)
    channel: str | None = None
    detail: str | None = None
    dropped: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["markets"] = sorted(self.markets)
        return {k: v for k, v in d.items() if v is not None or k in _ALWAYS}

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


# The fields the archiver may rely on are present even when null.
_ALWAYS = frozenset(
    (
        "cause",
        "conn",
        "sid",
        "expected_seq",
        "received_seq",
        "markets",
        "start_ns",
        "end_ns",
        "detected_ns",
    )
)
