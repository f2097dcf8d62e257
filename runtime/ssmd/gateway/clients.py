"""Per-client bounded buffers, delivery modes, drop policies and health states.

The fan-out only ever *offers* a message to a client (a deque append, never an await), so a
slow client can never slow the others. Each client has one writer task that drains its
buffer into the socket. A full buffer applies the client's policy:

* ``drop_oldest``: discard the oldest queued messages (order books get a fresh snapshot
  afterwards, since a dropped level update would leave the client's book wrong);
* ``drop_newest``: refuse the new message;
* ``disconnect``: close the client.

States: healthy → lagging (buffer over half full) → dropping (messages dropped) →
disconnecting (policy ``disconnect``, or lagging/dropping for longer than
``slow_consumer_after``)."""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

Mode = Literal["realtime", "conflated", "latest"]
Policy = Literal["drop_oldest", "drop_newest", "disconnect"]
MODES: tuple[Mode, ...] = ("realtime", "conflated", "latest")
POLICIES: tuple[Policy, ...] = ("drop_oldest", "drop_newest", "disconnect")

# (kind, symbol): a piece of state a conflated/latest client receives as its latest value.
StateKey = tuple[str, str]


class ClientState(StrEnum):
    HEALTHY = "healthy"
    LAGGING = "lagging"
    DROPPING = "dropping"
    DISCONNECTING = "disconnecting"


_ids = itertools.count(1)


@dataclass(eq=False)
class Client:
    remote: str
    max_messages: int
    max_bytes: int
    policy: Policy
    slow_after_s: float
    mode: Mode = "realtime"
    interval_ms: int = 1000
    id: str = field(default_factory=lambda: f"c{next(_ids)}")
    user: str | None = None  # which API key (its label, never the key) when auth is on
    connected_at: float = field(default_factory=time.time)
    symbols: set[str] = field(default_factory=set)
    queue: deque[bytes] = field(default_factory=deque)
    queued_bytes: int = 0
    # Conflated/latest: state keys changed since last sent; rendered when sent.
    dirty: dict[StateKey, None] = field(default_factory=dict)
    # Books whose level updates were dropped: the client gets a full snapshot next.
    resnap: set[str] = field(default_factory=set)
    sent: int = 0
    sent_bytes: int = 0
    dropped: int = 0
    dropped_unreported: int = 0
    flushes: int = 0  # conflation intervals flushed
    state: ClientState = ClientState.HEALTHY
    lag_since: float | None = None
    close_reason: str | None = None
    wake_cb: Callable[[], None] | None = None
    abort_armed: bool = False

    # -- subscriptions -----------------------------------------------------------------------

    def wants(self, symbol: str) -> bool:
        return symbol in self.symbols or "*" in self.symbols

    # -- offering ------------------------------------------------------------------------------

    def offer(self, payload: bytes, symbol: str | None = None) -> bool:
        """Queue one message; applies the policy when full. Returns False if not queued."""
        if self.state is ClientState.DISCONNECTING:
            return False
        n = len(payload)
        if len(self.queue) >= self.max_messages or self.queued_bytes + n > self.max_bytes:
            if self.policy == "disconnect":
                self.disconnect("slow consumer: buffer full (policy disconnect)")
                return False
            if self.policy == "drop_newest":
                self._drop(1, symbol)
                return False
            while self.queue and (
                len(self.queue) >= self.max_messages or self.queued_bytes + n > self.max_bytes
            ):
                old = self.queue.popleft()
                self.queued_bytes -= len(old)
                self._drop(1, None)
            # Which books lost an update is unknown once the oldest is gone: resnap them all.
            self.resnap.update(s for s in self.symbols if s != "*")
        self.queue.append(payload)
        self.queued_bytes += n
        self._update_state()
        self._wake()
        return True

    def mark(self, key: StateKey) -> None:
        """Conflated/latest: this state changed; the newest value is sent when due."""
        if self.state is ClientState.DISCONNECTING:
            return
        self.dirty[key] = None
        if self.mode == "latest":
            self._wake()

    def _drop(self, n: int, symbol: str | None) -> None:
        self.dropped += n
        self.dropped_unreported += n
        if symbol is not None:
            self.resnap.add(symbol)
        if self.state is not ClientState.DISCONNECTING:
            self.state = ClientState.DROPPING
            if self.lag_since is None:
                self.lag_since = time.monotonic()
        self._check_slow()

    def _update_state(self) -> None:
        if self.state in (ClientState.DISCONNECTING, ClientState.DROPPING):
            self._check_slow()
            return
        if len(self.queue) * 2 > self.max_messages or self.queued_bytes * 2 > self.max_bytes:
            if self.state is ClientState.HEALTHY:
                self.state, self.lag_since = ClientState.LAGGING, time.monotonic()
            self._check_slow()

    def _check_slow(self) -> None:
        if (
            self.lag_since is not None
            and self.state is not ClientState.DISCONNECTING
            and time.monotonic() - self.lag_since > self.slow_after_s
        ):
            self.disconnect(f"slow consumer: behind for more than {self.slow_after_s:g}s")

    def drained(self) -> None:
        """The writer emptied the buffer: the client caught up."""
        if self.state in (ClientState.LAGGING, ClientState.DROPPING):
            self.state, self.lag_since = ClientState.HEALTHY, None

    def disconnect(self, reason: str) -> None:
        if self.state is not ClientState.DISCONNECTING:
            self.state, self.close_reason = ClientState.DISCONNECTING, reason
            self._wake()

    def _wake(self) -> None:
        if self.wake_cb is not None:
            self.wake_cb()

    @property
    def lag(self) -> int:
        return len(self.queue)

    def info(self) -> dict[str, object]:
        return {
            "id": self.id,
            "remote": self.remote,
            "user": self.user,
            "connected_at": self.connected_at,
            "mode": self.mode,
            "interval_ms": self.interval_ms if self.mode == "conflated" else None,
            "symbols": sorted(self.symbols),
            "state": self.state.value,
            "policy": self.policy,
            "queued_messages": len(self.queue),
            "queued_bytes": self.queued_bytes,
            "max_messages": self.max_messages,
            "max_bytes": self.max_bytes,
            "sent": self.sent,
            "sent_bytes": self.sent_bytes,
            "dropped": self.dropped,
        }
