"""The hand-rolled pull consumer against a real server: ack subjects, expiry, AckAll."""

from __future__ import annotations

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

from ssmd.archiver.consumer import PullConsumer, ensure_consumer, header_value, parse_ack_reply


def test_parse_ack_reply_v1_and_v2() -> None:
    a = parse_ack_reply("$JS.ACK.S.C.2.17.9.1767225600000000000.5")
    assert (a.stream_seq, a.delivered, a.timestamp_ns, a.pending) == (17, 2, 1767225600000000000, 5)
    b = parse_ack_reply("$JS.ACK.dom.acc.S.C.1.18.10.1767225600000000001.0.xyz")
    assert (b.stream_seq, b.delivered, b.pending) == (18, 1, 0)
    assert header_value(b"NATS/1.0\r\nA: 1\r\nSsmd-Recv-Ns: 42\r\n\r\n", b"Ssmd-Recv-Ns") == b"42"
    assert header_value(b"NATS/1.0\r\nA: 1\r\n\r\n", b"Ssmd-Recv-Ns") is None


async def test_expired_requests_are_renewed_and_ack_all_moves_the_floor(
    nc: Client, js: JetStreamContext
) -> None:
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"]))
    await ensure_consumer(js, "S", "C", resume_after=0, ack_wait=30, max_ack_pending=1000)
    pc = PullConsumer(nc, "S", "C", batch=10, max_in_flight=20, expires=0.2)
    await pc.start()
    # nothing in the stream: take() wakes on the 408 of an expired request and renews it
    assert await pc.take(timeout=10) == []
    assert pc.statuses.get("408", 0) >= 1
    for i in range(25):
        await js.publish(f"s.{i}", b"{}")
    got = []
    while len(got) < 25:
        got += await pc.take(timeout=10)
    seqs = [parse_ack_reply(reply.decode()).stream_seq for _, reply, _, _ in got]
    assert seqs == list(range(1, 26))
    await pc.ack(got[19][1])  # AckAll of seq 20 acks 1..20
    await nc.flush()
    info = await js.consumer_info("S", "C")
    assert info.ack_floor.stream_seq == 20 and info.num_ack_pending == 5
    await pc.stop()
    # unacked deliveries (a crash): the consumer is recreated at the resume point
    seen, reused = await ensure_consumer(
        js, "S", "C", resume_after=22, ack_wait=30, max_ack_pending=1000
    )
    assert (seen, reused) == (22, False)
    info = await js.consumer_info("S", "C")
    assert info.num_pending == 3 and info.num_ack_pending == 0
