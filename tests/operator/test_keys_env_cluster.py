"""``ssmd env validate --cluster`` reports each failing check; ``ssmd env apply`` refuses
with the failing check, then applies once every check passes (emulator, real nats-server,
a local HTTP server as the S3 endpoint)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kopf.testing import KopfRunner

from ssmd.transport.server import EmbeddedNats
from ssmd_operator.kube import Kube
from tests import k8semu
from tests.keys_support import TEST_CERT, run_cli, secret
from tests.keys_support import no_secret_leaks as no_secret_leaks  # autouse
from tests.operator.support import (
    COMPONENTS,
    DEPLOYMENTS,
    eventually,
    kalshi_document,
    live,
    make_available,
    write_yaml,
)
from tests.operator.test_keys_chain import KEYS, SEALED_CRD, play_controller

S3_ID = secret("AKIAVALIDATETESTONLY")
S3_SECRET = secret("validate/TESTONLY/secret/77")
KEY_ID = secret("kid-validate-91c2")


async def ssmd(cwd: Path, *args: str) -> tuple[int, str]:
    return await run_cli(cwd, *args)


@pytest.fixture
async def s3_endpoint() -> AsyncIterator[str]:
    """Answers HEAD /ssmd-archive like S3 does for an existing bucket without credentials."""

    async def head(request: web.Request) -> web.Response:
        return web.Response(status=403 if request.match_info["bucket"] == "ssmd-archive" else 404)

    app = web.Application()
    app.router.add_route("HEAD", "/{bucket}", head)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


FEED: dict[str, Any] = {
    "apiVersion": "ssmd.io/v1alpha1",
    "kind": "Feed",
    "metadata": {"name": "kalshi", "namespace": "default"},
    "spec": {
        "venue": "kalshi",
        "versions": [
            {"version": "v2", "effectiveFrom": "2020-01-01", "endpoint": "wss://example.invalid/ws"}
        ],
    },
}


async def test_validate_cluster_reports_each_failing_check(
    k8s: k8semu.Emulator, kube: Kube, nats_server: EmbeddedNats, s3_endpoint: str, tmp_path: Path
) -> None:
    dead = closed_port()
    bad = kalshi_document(f"nats://127.0.0.1:{dead}")
    bad["spec"]["storage"]["s3"]["endpoint"] = f"http://127.0.0.1:{dead}"
    f = write_yaml(tmp_path / "bad.yaml", bad)
    code, out = await ssmd(tmp_path, "env", "validate", str(f), "--cluster")
    assert code == 1, out
    lines = out.splitlines()
    assert lines[0] == f"✓ {f}: Environment/kalshi"
    assert "  ✗ feed: Feed 'kalshi' does not exist in namespace default" in lines
    assert any(
        line.startswith(
            "  ✗ keys: key 'archive-s3' is not set: run `ssmd key set kalshi archive-s3"
        )
        and line.endswith("(and 1 more)")
        for line in lines
    ), out
    assert f"  ✗ nats: nats://127.0.0.1:{dead} is not reachable" in out
    assert f"  ✗ storage: S3 endpoint http://127.0.0.1:{dead} is not reachable" in out

    # apply refuses, with the failing check, and creates nothing
    code, out = await ssmd(tmp_path, "env", "apply", str(f))
    assert (
        code == 1
        and "✗ refusing to apply Environment/kalshi: feed: Feed 'kalshi' does not exist" in out
    )
    assert live(k8s, k8semu.kmock.resource("ssmd.io/v1alpha1/ssmdenvironments"), "kalshi") is None

    # Make every check pass: the Feed, the keys (sealed by the CLI), NATS, the bucket.
    await kube.create(FEED)
    good = kalshi_document(nats_server.url)
    good["spec"]["storage"]["s3"]["endpoint"] = s3_endpoint
    g = write_yaml(tmp_path / "good.yaml", good)
    (tmp_path / "k.pem").write_text("not-a-real-pem-but-sealed-anyway")
    cert = ("--cert", str(TEST_CERT))
    await ssmd(tmp_path, "key", "set", str(g), "kalshi", "--field", f"api_key_id={KEY_ID}",
               "--from-file", "private_key=k.pem", *cert)  # fmt: skip
    code, out = await ssmd(tmp_path, "env", "validate", str(g), "--cluster")
    assert code == 1
    assert "  ✓ feed: kalshi version v2 is active" in out
    assert "  ✗ keys: key 'archive-s3' is not set" in out and "(and" not in out
    assert f"  ✓ nats: {nats_server.url} is reachable" in out
    assert "  ✓ storage: S3" in out and "(HTTP 403)" in out
    await ssmd(tmp_path, "key", "set", str(g), "archive-s3", "--field", f"access_key_id={S3_ID}",
               "--field", f"secret_access_key={S3_SECRET}", *cert)  # fmt: skip
    code, out = await ssmd(tmp_path, "env", "validate", str(g), "--cluster")
    assert code == 0, out
    assert "  ✓ keys: 2 required key(s) set" in out

    wrong_bucket = kalshi_document(nats_server.url)
    wrong_bucket["spec"]["storage"]["s3"].update(endpoint=s3_endpoint, bucket="nope-bucket")
    code, out = await ssmd(
        tmp_path,
        "env",
        "validate",
        str(write_yaml(tmp_path / "wb.yaml", wrong_bucket)),
        "--cluster",
    )
    assert code == 1 and "  ✗ storage: S3 bucket 'nope-bucket' does not exist" in out

    code, out = await ssmd(tmp_path, "env", "apply", str(g), "--no-wait")
    assert code == 0, out
    assert "✓ Environment/kalshi created" in out
    env = live(k8s, k8semu.kmock.resource("ssmd.io/v1alpha1/ssmdenvironments"), "kalshi")
    assert env is not None and env["spec"]["storage"]["s3"]["endpoint"] == s3_endpoint
    code, out = await ssmd(tmp_path, "env", "apply", str(g), "--no-wait")
    assert code == 0 and "✓ Environment/kalshi unchanged" in out


async def test_apply_waits_for_ready_with_progress(
    nats_server: EmbeddedNats,
    k8s: k8semu.Emulator,
    operator: KopfRunner,
    kube: Kube,
    tmp_path: Path,
) -> None:
    k8s.register_crd(SEALED_CRD)
    await kube.create(FEED)
    doc = kalshi_document(nats_server.url)
    doc["spec"]["storage"] = {"local": {"path": "./data/archive"}}
    doc["spec"]["keys"].pop("archive-s3")
    f = write_yaml(tmp_path / "kalshi.yaml", doc)
    (tmp_path / "k.pem").write_text("sealed-placeholder")
    await ssmd(tmp_path, "key", "set", str(f), "kalshi", "--field", f"api_key_id={KEY_ID}",
               "--from-file", "private_key=k.pem", "--cert", str(TEST_CERT))  # fmt: skip
    await play_controller(kube, k8s, "kalshi-kalshi")  # the Key exists before the Environment
    await eventually(
        lambda: (live(k8s, KEYS, "kalshi-kalshi") or {}).get("status", {}).get("state") == "set"
    )

    async def deployment_controller() -> None:
        """Plays the Deployment controller: every wanted replica becomes available."""
        while True:
            for c in COMPONENTS:
                d = live(k8s, DEPLOYMENTS, f"kalshi-{c}")
                have = ((d or {}).get("status") or {}).get("availableReplicas")
                if d is not None and have != d["spec"]["replicas"]:
                    await make_available(kube, "kalshi", (c,))
            await asyncio.sleep(0.05)

    task = asyncio.create_task(deployment_controller())
    try:
        code, out = await ssmd(tmp_path, "env", "apply", str(f), "--timeout", "60")
    finally:
        task.cancel()
    assert code == 0, out
    assert "  ✓ keys: 1 required key(s) set" in out and "✓ Environment/kalshi created" in out
    assert "  ✓ StreamReady:" in out and "✓ kalshi is Ready (phase Running)" in out
