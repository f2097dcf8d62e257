"""A rotated key is used on the next reconnect to the simulator, without a restart: the
connector resolves $key:kalshi from the mounted Secret files on every connect."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ssmd.feeds.kalshi.auth import generate_private_key, private_key_pem
from ssmd.sim.kalshi import Fault, FaultKind, SimConfig
from ssmd.transport.server import EmbeddedNats

from .connector_support import rig, until
from .keys_support import no_secret_leaks as no_secret_leaks  # autouse
from .keys_support import secret
from .support import make_environment


def write_key(keys_dir: Path, key_id: str, pem: bytes) -> None:
    """Like the kubelet updating a Secret volume: new files appear atomically."""
    d = keys_dir / "kalshi"
    d.mkdir(parents=True, exist_ok=True)
    for name, data in (("api_key_id", key_id.encode()), ("private_key", pem)):
        tmp = d / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, d / name)


async def test_rotated_key_is_used_on_next_reconnect(
    tmp_path: Path, nats_server: EmbeddedNats, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = generate_private_key(), generate_private_key()
    old_pem, new_pem = private_key_pem(old), private_key_pem(new)
    secret(old_pem.decode())
    secret(new_pem.decode())
    keys_dir = tmp_path / "keys"
    write_key(keys_dir, "id-old", old_pem)
    monkeypatch.setenv("SSMD_KEYS_DIR", str(keys_dir))
    env = make_environment(
        "test",
        keys={"kalshi": {"type": "api_key", "fields": ["api_key_id", "private_key"]}},
        feed={
            "name": "kalshi",
            "endpoint": "ws://127.0.0.1:1/trade-api/ws/v2",
            "credentials": "$key:kalshi",
        },
        connector={"deadAfter": "1s", "metricsPort": 0},
        markets={"status": ["open"]},
    )
    sim_cfg = SimConfig(
        markets=6, rate=500, lifecycle_interval_s=0, data_dir=tmp_path / "sim",
        keys={"id-old": old.public_key(), "id-new": new.public_key()},
    )  # fmt: skip
    async with rig(tmp_path, nats_server.url, sim=sim_cfg, env=env) as (sim, c):
        await until(lambda: sum(s.frames for s in c.shards) > 50, 10, "frames with the old key")
        assert [x["key_id"] for x in sim.connections()] == ["id-old"]

        write_key(keys_dir, "id-new", new_pem)  # rotation: no restart, no signal
        sim.inject(Fault(FaultKind.CLOSE))
        await until(
            lambda: any(x["key_id"] == "id-new" and not x["closed"] for x in sim.connections()),
            10,
            "a reconnect signed with the new key",
        )
        await until(lambda: c.shards[0].connected, 10, "the shard to be connected again")
        assert c.stats.reconnects == 1  # the same connector, reconnected once
        live = [x for x in sim.connections() if not x["closed"]]
        assert [x["key_id"] for x in live] == ["id-new"] and all(x["authenticated"] for x in live)
