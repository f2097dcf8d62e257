"""Client buffer policies and health states (the pure part of the gateway's fan-out)."""

from __future__ import annotations

import pytest

from ssmd.gateway.clients import Client, ClientState


def _client(policy: str, slow_after_s: float = 3600.0) -> Client:
    return Client(
        remote="test", max_messages=4, max_bytes=1000, policy=policy, slow_after_s=slow_after_s
    )  # type: ignore[arg-type]


def test_states_go_healthy_lagging_dropping_and_back_when_drained() -> None:
    c = _client("drop_oldest")
    c.symbols.add("X")
    assert c.offer(b"1") and c.offer(b"2") and c.state is ClientState.HEALTHY
    c.offer(b"3")
    assert c.state is ClientState.LAGGING
    c.offer(b"4")
    c.offer(b"5")  # full: the oldest goes
    assert c.state is ClientState.DROPPING and list(c.queue) == [b"2", b"3", b"4", b"5"]
    assert c.dropped == 1 and c.dropped_unreported == 1 and c.resnap == {"X"}
    c.queue.clear()
    c.queued_bytes = 0
    c.drained()
    assert c.state is ClientState.HEALTHY


def test_drop_newest_refuses_the_new_message() -> None:
    c = _client("drop_newest")
    for m in (b"1", b"2", b"3", b"4"):
        assert c.offer(m)
    assert not c.offer(b"5", "X")
    assert list(c.queue) == [b"1", b"2", b"3", b"4"] and c.dropped == 1 and c.resnap == {"X"}


def test_byte_limit_counts_too() -> None:
    c = _client("drop_oldest")
    c.offer(b"a" * 600)
    c.offer(b"b" * 600)  # 1200 > 1000 bytes: the first is dropped
    assert list(c.queue) == [b"b" * 600] and c.queued_bytes == 600 and c.dropped == 1


def test_disconnect_policy_and_slow_consumer_timeout() -> None:
    c = _client("disconnect")
    for m in (b"1", b"2", b"3", b"4"):
        c.offer(m)
    assert not c.offer(b"5")
    assert c.state is ClientState.DISCONNECTING and "policy disconnect" in (c.close_reason or "")
    assert not c.offer(b"6")  # nothing more is queued for a client on its way out
    # Lagging for longer than slow_consumer_after: disconnected whatever the policy.
    s = _client("drop_oldest", slow_after_s=0.0)
    for m in (b"1", b"2", b"3"):
        s.offer(m)
    s.offer(b"4")
    assert s.state is ClientState.DISCONNECTING and "slow consumer" in (s.close_reason or "")


@pytest.mark.parametrize("mode", ["conflated", "latest"])
def test_state_marks_keep_only_the_newest(mode: str) -> None:
    c = _client("drop_oldest")
    c.mode = mode  # type: ignore[assignment]
    for _ in range(100):
        c.mark(("book", "X"))
    c.mark(("ticker", "X"))
    assert list(c.dirty) == [("book", "X"), ("ticker", "X")] and not c.queue
