"""The Environment reconcile loop, end to end: kubectl/kubernetes-asyncio -> emulator ->
the unmodified operator (kopf) -> children, a real nats-server's streams, and status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kopf.testing import KopfRunner
from nats.js import JetStreamContext

from ssmd.transport.server import EmbeddedNats
from ssmd_operator.kube import Kube
from tests import k8semu
from tests.operator.support import (
    CONFIGMAPS,
    DEPLOYMENTS,
    PVCS,
    SERVICES,
    cond,
    eventually,
    kalshi_document,
    kubectl,
    live,
    status,
    write_yaml,
)


def owned_by(obj: dict[str, Any] | None, env: dict[str, Any]) -> bool:
    refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
    return any(r["uid"] == env["metadata"]["uid"] and r.get("controller") for r in refs)


async def test_apply_creates_children_streams_and_columns(
    k8s: k8semu.Emulator,
    operator: KopfRunner,
    nats_server: EmbeddedNats,
    js: JetStreamContext,
    tmp_path: Path,
) -> None:
    manifest = write_yaml(tmp_path / "kalshi.yaml", kalshi_document(nats_server.url))
    await kubectl("apply", "--validate=false", "-f", str(manifest))

    await eventually(lambda: cond(k8s, "kalshi", "StreamReady").get("status") == "True")
    env = live(k8s, DEPLOYMENTS.__class__("ssmd.io/v1alpha1/ssmdenvironments"), "kalshi")
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
    assert cond(k8s, "kalshi", "KeysReady")["status"] == "Unknown"
    assert "not checked yet" in cond(k8s, "kalshi", "KeysReady")["message"]
    assert st["currentVersion"] == 1

    out = await kubectl("get", "ssmdenvironments")
    header = out.splitlines()[0].split()
    assert header[:5] == ["NAME", "FEED", "PHASE", "READY", "MARKETS"]
    assert "MSGS/S" in header and "LAG" in header and "AGE" in header
    assert out.splitlines()[1].split()[:2] == ["kalshi", "kalshi"]
