"""Fault injection: what can be injected, and the board that tracks pending faults.

A fault is a pool of ``count`` firings. Each firing happens on one connection: the one
named by ``conn``, or (``conn=None``) whichever connection, open now or later, reaches it
first. ``after`` is how many frames a connection must receive (since the fault was
injected, or since it connected if later) before the fault fires there.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    SKIP_SEQ = "skip_seq"  # the next orderbook_delta is withheld: its seq is lost, a gap
    DUPLICATE = "duplicate"  # the next data frame is sent twice, byte-identical
    REORDER = "reorder"  # the next data frame is sent after the one that follows it
    CLOSE = "close"  # close the socket (abruptly, or with a close frame if `code` is set)
    STALL = "stall"  # stop frames, pings and pongs; socket left open until faults are cleared
    MALFORMED = "malformed"  # a text frame that is not JSON
    UNKNOWN_TYPE = "unknown_type"  # valid JSON with an unknown "type"
    ERROR_25 = "error_25"  # "Subscription buffer overflow": subscription dropped
    ERROR_17 = "error_17"  # "Internal error": subscription dropped
    ERROR_10 = "error_10"  # "Channel error": subscription dropped
    REST_429 = "rest_429"  # next `count` REST requests answer 429


WS_KINDS = frozenset(FaultKind) - {FaultKind.REST_429}
SUB_ERROR_CODES = {FaultKind.ERROR_25: 25, FaultKind.ERROR_17: 17, FaultKind.ERROR_10: 10}


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    conn: int | None = None  # connection id; None = any connection (first come)
    count: int = 1  # firings (frames, connections or REST requests)
    after: int = 0  # frames a connection receives before the fault fires there
    sid: int | None = None  # error_* kinds: which subscription (default: the lowest data sid)
    code: int | None = None  # close: send a close frame with this code instead of dropping

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if self.count < 1:
            raise ValueError("count must be >= 1")
        if self.after < 0:
            raise ValueError("after must be >= 0")
        if self.code is not None and not (1000 <= self.code <= 4999):
            raise ValueError("code must be a WebSocket close code (1000-4999)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """From admin-API JSON; raises ValueError with a readable reason."""
        if not isinstance(data, dict):
            raise ValueError("fault must be a JSON object")
        unknown = set(data) - {"kind", "conn", "count", "after", "sid", "code"}
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        kind = data.get("kind")
        if kind not in {k.value for k in FaultKind}:
            raise ValueError(f"kind must be one of: {', '.join(k.value for k in FaultKind)}")
        ints: dict[str, int | None] = {}
        for name in ("conn", "count", "after", "sid", "code"):
            v = data.get(name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                raise ValueError(f"{name} must be an integer or null")
            ints[name] = v
        count = ints["count"]
        after = ints["after"]
        return cls(
            kind=FaultKind(kind),
            conn=ints["conn"],
            count=1 if count is None else count,
            after=0 if after is None else after,
            sid=ints["sid"],
            code=ints["code"],
        )

    @classmethod
    def parse(cls, text: str) -> Fault:
        """CLI form ``KIND[:COUNT][@AFTER]``, e.g. ``skip_seq:3@1000``."""
        spec, _, after = text.partition("@")
        kind, _, count = spec.partition(":")
        try:
            return cls(
                kind=FaultKind(kind.strip()),
                count=int(count) if count else 1,
                after=int(after) if after else 0,
            )
        except ValueError as exc:
            kinds = ", ".join(k.value for k in FaultKind)
            raise ValueError(
                f"bad fault {text!r} (KIND[:COUNT][@AFTER], KIND in {kinds}): {exc}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind.value
        return d


class ActiveFault:
    """A fault with firings left. ``base`` holds each connection's frame count at injection."""

    __slots__ = ("base", "fault", "id", "remaining")

    def __init__(self, fid: int, fault: Fault, base: dict[int, int]) -> None:
        self.id = fid
        self.fault = fault
        self.remaining = fault.count
        self.base = base

    def targets(self, conn_id: int) -> bool:
        return self.remaining > 0 and (self.fault.conn is None or self.fault.conn == conn_id)

    def due(self, conn_id: int, pushed: int) -> bool:
        return self.targets(conn_id) and pushed - self.base.get(conn_id, 0) >= self.fault.after

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.fault.to_dict(), "remaining": self.remaining}


class FaultBoard:
    """Pending faults. WebSocket faults are consulted only by connections flagged faulty,
    so the fault-free hot path pays nothing."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.ws: list[ActiveFault] = []
        self.rest_429 = 0

    def add(self, fault: Fault, pushed_by_conn: dict[int, int]) -> ActiveFault | None:
        if fault.kind is FaultKind.REST_429:
            self.rest_429 += fault.count
            return None
        af = ActiveFault(next(self._ids), fault, dict(pushed_by_conn))
        self.ws.append(af)
        return af

    def for_conn(self, conn_id: int) -> list[ActiveFault]:
        return [af for af in self.ws if af.targets(conn_id)]

    def consume(self, af: ActiveFault) -> None:
        af.remaining -= 1
        if af.remaining <= 0 and af in self.ws:
            self.ws.remove(af)

    def take_rest_429(self) -> bool:
        if self.rest_429 > 0:
            self.rest_429 -= 1
            return True
        return False

    def clear(self) -> None:
        self.ws.clear()
        self.rest_429 = 0

    def describe(self) -> list[dict[str, Any]]:
        out = [af.to_dict() for af in self.ws]
        if self.rest_429:
            out.append({"kind": FaultKind.REST_429.value, "remaining": self.rest_429})
        return out


def parse_faults(texts: Iterable[str]) -> list[Fault]:
    return [Fault.parse(t) for t in texts]
