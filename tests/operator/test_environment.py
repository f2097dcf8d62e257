"""The Environment reconcile loop, end to end: kubectl/kubernetes-asyncio -> emulator ->
the unmodified operator (kopf) -> children, a real nats-server's streams, and status."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from kopf.testing import KopfRunner
from nats.js import JetStreamContext

from ssmd.transport.kv import ensure_kv
from ssmd.transport.server import EmbeddedNats
from ssmd_operator.kube import Kube
from tests import k8semu
from tests.operator.support import (
    CONFIGMAPS,
    DEPLOYMENTS,
    ENVS,
    PVCS,
    SERVICES,
    cond,
    env_body,
    event_reasons,
    eventually,
    kalshi_document,
    kubectl,
    live,
    make_available,
    replicas,
    set_key,
    set_required_keys,
    ssmd,
    status,
    write_yaml,
)

KEY_ID = "kid-env-test-only-5d2c"
PEM = "-----BEGIN PRIVATE KEY-----\nenv-test-not-a-real-key-0123456789abcdef\n"
S3_ID = "AKIAENVTESTONLY01"
S3_SECRET = "env/secret/TESTONLY/7e1b2c"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def owned_by(obj: dict[str, Any] | None, env: dict[str, Any]) -> bool:
    refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
    return any(r["uid"] == env["metadata"]["uid"] and r.get("controller") for r in refs)


async def test_apply_creates_children_streams_and_columns(
    nats_server: EmbeddedNats,
    k8s: k8semu.Emulator,
    operator: KopfRunner,
    js: JetStreamContext,
    kube: Kube,
    tmp_path: Path,
) -> None:
    doc = kalshi_document(nats_server.url)
    manifest = write_yaml(tmp_path / "kalshi.yaml", doc)
    await kubectl("apply", "--validate=false", "-f", str(manifest))

    await eventually(lambda: cond(k8s, "kalshi", "StreamReady").get("status") == "True")
    # No keys yet: everything but the connector starts, and KeysReady says what to run.
    keys = await eventually(
        lambda: (c := cond(k8s, "kalshi", "KeysReady")).get("status") == "False" and c
    )
    assert keys["reason"] == "KeysMissing"
    assert keys["message"] == (
        "key 'archive-s3' is not set: run `ssmd key set kalshi archive-s3 "
        "--field access_key_id=VALUE --field secret_access_key=VALUE` (and 1 more)"
    )
    await eventually(lambda: replicas(k8s, "kalshi")["secmaster"] == 1)
    assert replicas(k8s, "kalshi") == {"secmaster": 1, "archiver": 1, "gateway": 1, "connector": 0}
    ready = cond(k8s, "kalshi", "Ready")
    assert ready["status"] == "False" and ready["reason"] == "KeysMissing"
    await set_key(
        kube, k8s, doc, "archive-s3", {"access_key_id": S3_ID, "secret_access_key": S3_SECRET}
    )
    kalshi_missing = (
        "key 'kalshi' is not set: run `ssmd key set kalshi kalshi --field api_key_id=VALUE "
        "--from-file private_key=PATH`"
    )
    await eventually(lambda: cond(k8s, "kalshi", "KeysReady").get("message") == kalshi_missing)
    assert replicas(k8s, "kalshi")["connector"] == 0
    await set_key(kube, k8s, doc, "kalshi", {"api_key_id": KEY_ID, "private_key": PEM})
    await eventually(lambda: cond(k8s, "kalshi", "KeysReady").get("status") == "True")
    assert cond(k8s, "kalshi", "KeysReady")["message"] == "2 required key(s) set"
    await eventually(lambda: replicas(k8s, "kalshi")["connector"] == 1)

    env = live(k8s, ENVS, "kalshi")
    assert env is not None
    names = [f"kalshi-{c}" for c in ("connector", "archiver", "gateway", "secmaster")]
    for name in names:
        assert owned_by(live(k8s, DEPLOYMENTS, name), env), name
    assert owned_by(live(k8s, CONFIGMAPS, "kalshi-environment"), env)
    assert owned_by(live(k8s, SERVICES, "kalshi-gateway"), env)
    assert live(k8s, PVCS, "kalshi-archive") is None  # S3 storage: no claim

    connector = live(k8s, DEPLOYMENTS, "kalshi-connector")
    assert connector is not None
    pod = connector["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["args"] == ["connector", "--env", "/etc/ssmd/environment.yaml"]
    assert container["image"].startswith("ghcr.io/ssmd/ssmd:")
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 9101}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 9101}
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    env_vars = {e["name"]: e for e in container["env"]}
    assert env_vars["KALSHI_API_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == "kalshi-kalshi"
    assert env_vars["KALSHI_PRIVATE_KEY_PATH"]["value"].endswith("/kalshi/private_key")
    archiver = live(k8s, DEPLOYMENTS, "kalshi-archiver")
    assert archiver is not None
    volumes = archiver["spec"]["template"]["spec"]["volumes"]
    assert {"name": "key-archive-s3", "secret": {"secretName": "kalshi-archive-s3"}} in volumes
    gateway = live(k8s, DEPLOYMENTS, "kalshi-gateway")
    assert gateway is not None
    probe = gateway["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]
    assert probe == {"path": "/v1/health", "port": 8080}

    # The JetStream streams of the design exist on the real server.
    names_js = {s.config.name for s in await js.streams_info()}
    assert {"KALSHI_KALSHI", "KALSHI_KALSHI_BOOKS", "KALSHI_DLQ"} <= names_js

    st = status(k8s, "kalshi")
    assert st["observedGeneration"] == env["metadata"]["generation"]
    assert st["stream"]["name"] == "KALSHI_KALSHI"
    assert cond(k8s, "kalshi", "KeysReady")["reason"] == "KeysSet"
    assert st["currentVersion"] == 1

    out = await kubectl("get", "ssmdenvironments")
    header = out.splitlines()[0].split()
    assert header[:5] == ["NAME", "FEED", "PHASE", "READY", "MARKETS"]
    assert "MSGS/S" in header and "LAG" in header and "AGE" in header
    assert out.splitlines()[1].split()[:2] == ["kalshi", "kalshi"]


async def _create(kube: Kube, doc: dict[str, Any]) -> None:
    await kube.create(env_body(doc))


async def _create_with_keys(kube: Kube, k8s: k8semu.Emulator, doc: dict[str, Any]) -> None:
    """The documented order (environments/kalshi.yaml): keys first, then the Environment,
    so the connector starts with the rest from the first pass."""
    await set_required_keys(kube, k8s, doc)
    await _create(kube, doc)


async def test_spec_change_updates_deployments_and_records_a_version(
    nats_server: EmbeddedNats, k8s: k8semu.Emulator, operator: KopfRunner, kube: Kube
) -> None:
    await _create(kube, kalshi_document(nats_server.url))
    await eventually(lambda: status(k8s, "kalshi").get("currentVersion") == 1)
    spec_patch = {"image": {"tag": "v9"}, "connector": {"maxMarketsPerConnection": 100}}
    await kube.patch("Environment", "default", "kalshi", {"spec": spec_patch})

    def image() -> str:
        d = live(k8s, DEPLOYMENTS, "kalshi-connector") or {}
        return str(d["spec"]["template"]["spec"]["containers"][0]["image"])

    await eventually(lambda: image() == "ghcr.io/ssmd/ssmd:v9")
    await eventually(lambda: status(k8s, "kalshi").get("currentVersion") == 2)
    env = live(k8s, ENVS, "kalshi")
    assert env is not None
    st = env["status"]
    await eventually(lambda: status(k8s, "kalshi")["observedGeneration"] == 2)
    assert [v["version"] for v in st["versions"]] == [1, 2]
    assert st["versions"][0]["configHash"] != st["versions"][1]["configHash"]
    v2 = live(k8s, CONFIGMAPS, "kalshi-v2")
    assert v2 is not None and v2["immutable"] is True
    rendered = live(k8s, CONFIGMAPS, "kalshi-environment") or {}
    assert "maxMarketsPerConnection: 100" in rendered["data"]["environment.yaml"]

    diff, history, shown, missing = await asyncio.gather(  # independent: run side by side
        ssmd("env", "diff", "kalshi", "--v1", "1", "--v2", "2"),
        ssmd("env", "history", "kalshi"),
        ssmd("env", "show", "kalshi", "--version", "1"),
        ssmd("env", "diff", "kalshi", "--v1", "7", check=False),
    )
    assert "+  tag: v9" in diff
    assert "-  maxMarketsPerConnection: 200" in diff and "+  maxMarketsPerConnection: 100" in diff
    assert history.splitlines()[0].split()[:3] == ["VERSION", "CONFIG", "HASH"]
    assert len(history.splitlines()) == 3
    assert "maxMarketsPerConnection: 200" in shown
    assert (
        missing.strip()
        == "error: version 7 of kalshi is not recorded (see `ssmd env history kalshi`)"
    )


async def test_invalid_spec_changes_nothing_and_a_stream_rename_is_refused(
    nats_server: EmbeddedNats, k8s: k8semu.Emulator, operator: KopfRunner, kube: Kube
) -> None:
    await _create(kube, kalshi_document(nats_server.url))
    await eventually(lambda: cond(k8s, "kalshi", "StreamReady").get("status") == "True")
    before = {n: (live(k8s, DEPLOYMENTS, f"kalshi-{n}") or {})["metadata"]["resourceVersion"]
              for n in ("connector", "archiver")}  # fmt: skip

    await kube.patch(
        "Environment", "default", "kalshi", {"spec": {"transport": {"stream": {"maxAge": "soon"}}}}
    )
    ready = await eventually(
        lambda: (c := cond(k8s, "kalshi", "Ready")).get("reason") == "InvalidSpec" and c
    )
    assert ready["status"] == "False"
    assert "spec.transport.stream.maxAge" in ready["message"]
    assert status(k8s, "kalshi")["currentVersion"] == 1  # no version for an invalid spec
    after = {n: (live(k8s, DEPLOYMENTS, f"kalshi-{n}") or {})["metadata"]["resourceVersion"]
             for n in ("connector", "archiver")}  # fmt: skip
    assert after == before

    # Back to valid, then a feed rename: JetStream names are immutable -> refused, clearly.
    await kube.patch(
        "Environment", "default", "kalshi", {"spec": {"transport": {"stream": {"maxAge": "24h"}}}}
    )
    await eventually(lambda: cond(k8s, "kalshi", "Ready").get("reason") != "InvalidSpec")
    await kube.patch("Environment", "default", "kalshi", {"spec": {"feed": {"name": "kalshi2"}}})
    stream = await eventually(
        lambda: (
            (c := cond(k8s, "kalshi", "StreamReady")).get("reason") == "StreamRenameRefused" and c
        )
    )
    assert "KALSHI_KALSHI cannot be renamed to KALSHI_KALSHI2" in stream["message"]
    assert cond(k8s, "kalshi", "Ready")["status"] == "False"

    # A limit JetStream cannot change on an existing stream: refused with the field named.
    spec = {"feed": {"name": "kalshi"}, "transport": {"stream": {"storage": "memory"}}}
    await kube.patch("Environment", "default", "kalshi", {"spec": spec})
    refused = await eventually(
        lambda: (
            (c := cond(k8s, "kalshi", "StreamReady")).get("reason") == "StreamConfigRefused" and c
        )
    )
    assert "spec.transport.stream.storage cannot change from file to memory" in refused["message"]


async def test_timer_recreates_a_deleted_deployment(
    nats_server: EmbeddedNats, k8s: k8semu.Emulator, operator: KopfRunner, kube: Kube
) -> None:
    await _create_with_keys(kube, k8s, kalshi_document(nats_server.url))
    first = await eventually(lambda: live(k8s, DEPLOYMENTS, "kalshi-connector"))
    assert await kube.delete("Deployment", "default", "kalshi-connector")
    again = await eventually(
        lambda: (
            (d := live(k8s, DEPLOYMENTS, "kalshi-connector"))
            and d["metadata"]["uid"] != first["metadata"]["uid"]
            and d
        )
    )
    assert again["spec"]["replicas"] == 1
    assert await eventually(lambda: _has(event_reasons(kube, "kalshi"), "DeploymentRecreated"))


@pytest.fixture
async def late_nats(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    """A nats-server that is not running yet; requested before ``operator`` so that it stops
    only after the operator has (no reconcile pass waits on a dead server at teardown)."""
    srv = EmbeddedNats(tmp_path / "late-nats", port=free_port())
    yield srv
    await srv.stop()


async def test_nats_down_at_first_then_up(
    late_nats: EmbeddedNats, k8s: k8semu.Emulator, operator: KopfRunner, kube: Kube
) -> None:
    port = late_nats.port
    await _create(kube, kalshi_document(f"nats://127.0.0.1:{port}"))
    down = await eventually(
        lambda: (c := cond(k8s, "kalshi", "StreamReady")).get("reason") == "NatsUnreachable" and c
    )
    assert down["status"] == "False" and f"127.0.0.1:{port}" in down["message"]
    assert live(k8s, DEPLOYMENTS, "kalshi-connector") is not None  # children do not wait for NATS
    await late_nats.start()
    await eventually(lambda: cond(k8s, "kalshi", "StreamReady").get("status") == "True")
    assert status(k8s, "kalshi")["stream"]["name"] == "KALSHI_KALSHI"


async def test_status_reflects_the_status_kv_and_deployments(
    nats_server: EmbeddedNats, k8s: k8semu.Emulator, operator: KopfRunner, js: JetStreamContext,
    kube: Kube,
) -> None:  # fmt: skip
    await _create_with_keys(kube, k8s, kalshi_document(nats_server.url))
    await eventually(lambda: cond(k8s, "kalshi", "StreamReady").get("status") == "True")
    await js.publish("kalshi.kalshi.json.trade.T1", b"{}")
    today = datetime.now(UTC).date()
    kv = await ensure_kv(js, "kalshi-status")
    docs = {
        "connector": {"markets": 12, "msgs_per_sec": 34.56, "source": "exchange", "big": "x" * 999},
        "archiver": {"lag_s": 3, "inventory": [
            {"date": today.isoformat(), "records": 10, "bytes": 100, "files": 2, "gaps": 1},
            {"date": (today - timedelta(days=45)).isoformat(), "records": 1, "files": 1},
        ]},
        "gateway": {"clients": 3},
        "secmaster": {"markets": 12, "gaps_today": 0},
    }  # fmt: skip
    for name, doc in docs.items():
        await kv.put(name, orjson.dumps({**doc, "heartbeat": time.time()}))

    st = await eventually(lambda: (s := status(k8s, "kalshi")).get("markets") == 12 and s)
    assert st["msgsPerSec"] == 34.6 and st["lag"] == "3s"
    assert st["components"]["gateway"]["clients"] == 3
    assert len(st["components"]["connector"]["big"]) == 200  # bounded
    assert [d["date"] for d in st["inventory"]] == [today.isoformat()]  # last 30 days only
    assert st["inventory"][0] == {"date": today.isoformat(), "records": 10, "bytes": 100,
                                  "files": 2, "gaps": 1}  # fmt: skip
    assert st["lastArchiveDate"] == today.isoformat()
    await eventually(lambda: status(k8s, "kalshi")["stream"]["messages"] == 1)
    assert status(k8s, "kalshi")["stream"]["lastSeq"] == 1
    assert cond(k8s, "kalshi", "ComponentsReady")["status"] == "False"

    await make_available(kube, "kalshi")
    await eventually(lambda: cond(k8s, "kalshi", "Ready").get("status") == "True")
    assert status(k8s, "kalshi")["phase"] == "Running"
    out = await kubectl("get", "ssmdenv", "kalshi")
    row = out.splitlines()[1].split()
    assert row[:5] == ["kalshi", "kalshi", "Running", "True", "12"]
    assert row[5:8] == ["34.6", "3s", today.isoformat()]


def _hhmm(now: datetime, hours: int) -> str:
    return (now + timedelta(hours=hours)).strftime("%H:%M")


async def test_schedule_tears_down_in_order_and_starts_again(
    nats_server: EmbeddedNats, k8s: k8semu.Emulator, operator: KopfRunner, js: JetStreamContext,
    kube: Kube,
) -> None:  # fmt: skip
    await _create_with_keys(kube, k8s, kalshi_document(nats_server.url))
    await eventually(lambda: replicas(k8s, "kalshi")["connector"] == 1)
    await make_available(kube, "kalshi")
    await eventually(lambda: status(k8s, "kalshi").get("phase") == "Running")

    now = datetime.now(UTC)
    window = {"timezone": "UTC", "teardown": _hhmm(now, -1), "startup": _hhmm(now, 1)}
    await kube.patch("Environment", "default", "kalshi", {"spec": {"schedule": window}})
    # Connector first; the archiver keeps running until it reports its files closed.
    await eventually(lambda: replicas(k8s, "kalshi")["connector"] == 0)
    assert replicas(k8s, "kalshi") == {"secmaster": 1, "archiver": 1, "gateway": 1, "connector": 0}
    await eventually(lambda: status(k8s, "kalshi").get("phase") == "Stopping")
    assert replicas(k8s, "kalshi")["archiver"] == 1
    kv = await ensure_kv(js, "kalshi-status")
    await kv.put("archiver", orjson.dumps({"filesClosed": True, "heartbeat": time.time()}))
    await eventually(lambda: status(k8s, "kalshi").get("phase") == "Stopped")
    assert replicas(k8s, "kalshi") == {"secmaster": 0, "archiver": 0, "gateway": 0, "connector": 0}
    assert cond(k8s, "kalshi", "Ready")["status"] == "True"  # stopped as intended
    await make_available(kube, "kalshi")  # the Deployment controller reports 0 of 0
    reasons = await eventually(lambda: _has(event_reasons(kube, "kalshi"), "TeardownGateway"))
    teardown = [r for r in reasons if r.startswith("Teardown")]
    assert teardown == ["TeardownConnector", "TeardownArchiver", "TeardownGateway"]

    # Startup: secmaster first, the rest once it is available; Starting -> Running.
    window = {"timezone": "UTC", "teardown": _hhmm(now, 1), "startup": _hhmm(now, -1)}
    await kube.patch("Environment", "default", "kalshi", {"spec": {"schedule": window}})
    await eventually(lambda: replicas(k8s, "kalshi")["secmaster"] == 1)
    await eventually(lambda: status(k8s, "kalshi").get("phase") == "Starting")
    assert replicas(k8s, "kalshi") == {"secmaster": 1, "archiver": 0, "gateway": 0, "connector": 0}
    await make_available(kube, "kalshi", ("secmaster",))
    await eventually(lambda: replicas(k8s, "kalshi")["connector"] == 1)
    assert replicas(k8s, "kalshi") == {"secmaster": 1, "archiver": 1, "gateway": 1, "connector": 1}
    await make_available(kube, "kalshi")
    await eventually(lambda: status(k8s, "kalshi").get("phase") == "Running")
    reasons = await eventually(lambda: _has(event_reasons(kube, "kalshi"), "StartupComponents"))
    assert [r for r in reasons if r.startswith("Startup")] == [
        "StartupSecmaster",
        "StartupComponents",
    ]


async def _has(reasons: Any, wanted: str) -> list[str] | None:
    got = await reasons
    return got if wanted in got else None


async def test_suspend_with_ssmd_ops(
    nats_server: EmbeddedNats, k8s: k8semu.Emulator, operator: KopfRunner, js: JetStreamContext,
    kube: Kube,
) -> None:  # fmt: skip
    await _create_with_keys(kube, k8s, kalshi_document(nats_server.url))
    await eventually(lambda: replicas(k8s, "kalshi")["connector"] == 1)
    await make_available(kube, "kalshi")
    await eventually(lambda: status(k8s, "kalshi").get("phase") == "Running")

    stop = asyncio.create_task(ssmd("ops", "stop", "kalshi", "--wait", "30"))
    await eventually(lambda: replicas(k8s, "kalshi")["connector"] == 0)
    kv = await ensure_kv(js, "kalshi-status")
    await kv.put("archiver", orjson.dumps({"openFiles": 0, "heartbeat": time.time()}))
    out = await stop
    assert "TeardownConnector" in out and "TeardownArchiver" in out
    assert "kalshi: phase Suspended" in out
    assert replicas(k8s, "kalshi") == {"secmaster": 0, "archiver": 0, "gateway": 0, "connector": 0}
    shown = await ssmd("ops", "status", "kalshi", "--json")
    assert json.loads(shown)["phase"] == "Suspended"

    await ssmd("ops", "start", "kalshi")
    await eventually(lambda: replicas(k8s, "kalshi")["secmaster"] == 1)
    assert (live(k8s, ENVS, "kalshi") or {})["spec"]["suspend"] is False


async def test_deleting_keeps_the_stream_unless_asked(
    nats_server: EmbeddedNats, k8s: k8semu.Emulator, operator: KopfRunner, js: JetStreamContext,
    kube: Kube,
) -> None:  # fmt: skip
    await _create(kube, kalshi_document(nats_server.url))
    doomed = kalshi_document(nats_server.url)
    doomed["metadata"]["name"] = "scratch"
    doomed["spec"]["transport"]["stream"]["deletePolicy"] = "delete"
    await _create(kube, doomed)
    for name in ("kalshi", "scratch"):
        await eventually(lambda n=name: cond(k8s, n, "StreamReady").get("status") == "True")
    assert (await js.stream_info("SCRATCH_KALSHI")).config.name == "SCRATCH_KALSHI"

    for name in ("kalshi", "scratch"):
        await kube.delete("Environment", "default", name)
    for name in ("kalshi", "scratch"):
        await eventually(lambda n=name: live(k8s, ENVS, n) is None)
        assert live(k8s, DEPLOYMENTS, f"{name}-connector") is None  # garbage-collected
    names = {s.config.name for s in await js.streams_info()}
    assert "KALSHI_KALSHI" in names  # retain: data is never deleted by default
    assert not any(n.startswith("SCRATCH_") for n in names)


async def test_ssmd_operator_entrypoint(
    nats_server: EmbeddedNats, k8s: k8semu.Emulator, kube: Kube
) -> None:
    """The operator image's command, `ssmd operator`, as a process against the emulator."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ssmd.cli.main", "operator", "--namespace", "default",
        "--liveness", "", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await _create(kube, kalshi_document(nats_server.url))
        await eventually(lambda: cond(k8s, "kalshi", "StreamReady").get("status") == "True", 30)
        assert live(k8s, DEPLOYMENTS, "kalshi-connector") is not None
    finally:
        proc.terminate()
        _, err = await proc.communicate()
    assert proc.returncode in (0, -15), err.decode()[-2000:]
