"""Embedded nats-server and the streams of an Environment, against a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from nats.js import JetStreamContext
from nats.js.api import StorageType

from ssmd import subjects
from ssmd.spec import Environment
from ssmd.transport.connect import NatsUnavailable, connect
from ssmd.transport.server import EmbeddedNats
from ssmd.transport.streams import StreamConfigError, ensure_streams, verify_captured


async def test_streams_created_with_design_limits(
    js: JetStreamContext, env_factory: Callable[..., Environment]
) -> None:
    env = env_factory("prod")
    results = await ensure_streams(js, env)
    assert [(r.name, r.action) for r in results] == [
        ("PROD_KALSHI", "created"),
        ("PROD_KALSHI_BOOKS", "created"),
        ("PROD_DLQ", "created"),
    ]
    main = (await js.stream_info("PROD_KALSHI")).config
    assert main.storage == StorageType.FILE
    assert main.max_age == 24 * 3600
    assert main.max_bytes == 10 * 1024**3
    assert main.duplicate_window == 120
    assert main.max_msg_size == 1024 * 1024
    books = (await js.stream_info("PROD_KALSHI_BOOKS")).config
    assert books.max_msgs_per_subject == 1
    dlq = (await js.stream_info("PROD_DLQ")).config
    assert dlq.max_age == 7 * 24 * 3600


async def test_every_published_subject_lands_in_its_stream(
    js: JetStreamContext, env_factory: Callable[..., Environment]
) -> None:
    await ensure_streams(js, env_factory("prod"))
    main = subjects.stream_name("prod", "kalshi")
    published = [subjects.json_subject("prod", "kalshi", t, "T.1") for t in subjects.FRAME_TYPES]
    published += [
        subjects.gap_subject("prod", "kalshi"),
        subjects.meta_market_subject("prod", "kalshi", "T"),
    ]
    await verify_captured(js, published, main)
    await verify_captured(js, [subjects.book_subject("prod", "kalshi", "T")], "PROD_KALSHI_BOOKS")
    await verify_captured(js, [subjects.dlq_subject("prod", "connector")], "PROD_DLQ")
    with pytest.raises(StreamConfigError, match="captured by no stream"):
        await verify_captured(js, ["prod.other.json.trade.T"], main)


async def test_ensure_is_idempotent_and_updates_mutable_limits(
    js: JetStreamContext, env_factory: Callable[..., Environment]
) -> None:
    await ensure_streams(js, env_factory("prod"))
    again = await ensure_streams(js, env_factory("prod"))
    assert {r.action for r in again} == {"unchanged"}
    changed = await ensure_streams(js, env_factory("prod", transport={"stream": {"maxAge": "12h"}}))
    assert [r.action for r in changed] == ["updated", "unchanged", "unchanged"]
    assert (await js.stream_info("PROD_KALSHI")).config.max_age == 12 * 3600


async def test_incompatible_change_is_refused_naming_the_field(
    js: JetStreamContext, env_factory: Callable[..., Environment]
) -> None:
    await ensure_streams(js, env_factory("prod"))
    with pytest.raises(StreamConfigError) as info:
        await ensure_streams(js, env_factory("prod", transport={"stream": {"storage": "memory"}}))
    assert "spec.transport.stream.storage cannot change from file to memory" in str(info.value)
    assert (await js.stream_info("PROD_KALSHI")).config.storage == StorageType.FILE


async def test_refused_replicas_on_single_server_names_field(
    js: JetStreamContext, env_factory: Callable[..., Environment]
) -> None:
    with pytest.raises(StreamConfigError, match=r"spec\.transport\.stream\.replicas"):
        await ensure_streams(js, env_factory("prod", transport={"stream": {"replicas": 3}}))


async def test_external_server_by_url(
    nats_server: EmbeddedNats, env_factory: Callable[..., Environment]
) -> None:
    env = env_factory("ext", transport={"url": nats_server.url})
    assert env.spec.transport.url is not None
    client = await connect(env.spec.transport.url)
    try:
        assert next(r.action for r in await ensure_streams(client.jetstream(), env)) == "created"
    finally:
        await client.close()


async def test_server_restart_keeps_streams(
    tmp_path: Path, env_factory: Callable[..., Environment]
) -> None:
    srv = EmbeddedNats(tmp_path / "n")
    await srv.start()
    port = srv.actual_port
    client = await connect(srv.url, reconnect=False)
    await ensure_streams(client.jetstream(), env_factory("prod"))
    await client.jetstream().publish("prod.kalshi.json.trade.T", b"{}")
    await client.close()
    await srv.stop()
    assert not srv.running
    srv2 = EmbeddedNats(tmp_path / "n", port=port or 0)
    async with srv2:
        assert srv2.actual_port == port
        c2 = await connect(srv2.url)
        info = await c2.jetstream().stream_info("PROD_KALSHI")
        assert info.state.messages == 1
        await c2.close()


async def test_unreachable_nats_is_one_clear_error() -> None:
    with pytest.raises(NatsUnavailable) as info:
        await connect("nats://user:hunter2@127.0.0.1:1", connect_timeout=1, initial_attempts=2)
    assert str(info.value).startswith("cannot reach NATS at nats://***@127.0.0.1:1: ")
    assert "hunter2" not in str(info.value)


async def test_connect_without_reconnect_fails_fast() -> None:
    """nats-py loops forever when max_reconnect_attempts is 0; ours must give up."""
    with pytest.raises(NatsUnavailable):
        await asyncio.wait_for(
            connect("nats://127.0.0.1:1", reconnect=False, initial_attempts=1, connect_timeout=1),
            30,
        )


async def test_read_status_of_an_empty_bucket(js: JetStreamContext) -> None:
    from ssmd.transport.kv import read_status, status_bucket

    await status_bucket(js, "quiet")
    assert await read_status(js, "quiet") == {}


async def test_status_reporter_writes_and_stops(js: JetStreamContext) -> None:
    from ssmd.transport.kv import StatusReporter, read_status

    n = {"ticks": 0}

    def snap() -> dict[str, int]:
        n["ticks"] += 1
        return {"ticks": n["ticks"]}

    rep = StatusReporter(js, "st", "probe", snap, source="simulator", interval=0.05)
    rep.start()
    async with asyncio.timeout(10):  # the loop writes on its own
        while "probe" not in await read_status(js, "st"):
            await asyncio.sleep(0.01)
    await rep.stop()
    doc = (await read_status(js, "st"))["probe"]
    assert doc["source"] == "simulator" and doc["component"] == "probe"
    assert doc["ticks"] == n["ticks"] >= 2  # the loop wrote, and stop() wrote the final state
