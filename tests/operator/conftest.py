"""Fixtures for the operator tests: the kopf-friendly Kubernetes emulator (tests/k8semu.py)
on a real localhost port, and the operator, unmodified, in its own thread via KopfRunner."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock
import kopf
import pytest
from kopf.testing import KopfRunner
from kubernetes_asyncio.config import kube_config

# Read by ssmd_operator.config when the handlers are imported: fast timers for tests.
os.environ["SSMD_OPERATOR_INTERVAL"] = "0.3"
os.environ["SSMD_OPERATOR_RETRY"] = "0.3"
os.environ["SSMD_OPERATOR_FEED_INTERVAL"] = "0.3"
# environments/kalshi.yaml archives to AWS S3: never reach it from tests (the manifest
# inventory is tested against a local store in test_units.py).
os.environ["SSMD_OPERATOR_ARCHIVE_INVENTORY"] = "0"

import ssmd_operator.handlers  # noqa: F401  (registers the handlers)
from ssmd_operator.kube import Kube
from tests import k8semu
from tests.operator.support import CRDS_FILE, ENVS, eventually

REGISTRY = kopf.get_default_registry()  # KopfRunner(registry=...) would otherwise replace it


@pytest.fixture
def kmock_options() -> dict[str, Any]:
    return {"cls": k8semu.Emulator}


@pytest.fixture
async def k8s(
    kmock: k8semu.Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> k8semu.Emulator:
    k8semu.prepare(kmock, crd_paths=[str(CRDS_FILE)], namespaces=["default"])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(k8semu.kubeconfig_text(kmock.url))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # kubernetes_asyncio reads $KUBECONFIG once, at import time.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    monkeypatch.setenv("KUBECACHEDIR", str(tmp_path / "kubectl-cache"))
    return kmock


@pytest.fixture
async def kube(k8s: k8semu.Emulator) -> AsyncIterator[Kube]:
    async with await Kube.connect() as client:
        yield client


@pytest.fixture
async def operator(k8s: k8semu.Emulator) -> AsyncIterator[KopfRunner]:
    """kopf in its own thread and loop; the emulator keeps serving from the test's loop."""
    runner = KopfRunner(
        ["run", "--standalone", "--namespace=default"]
        + (["--verbose"] if os.environ.get("SSMD_TEST_KOPF_LOG") else []),
        registry=REGISTRY,
        settings=kopf.OperatorSettings(),
        timeout=30,
    )
    runner.__enter__()
    await eventually(lambda: any(r.resource == ENVS for r in k8s[kmock.action.WATCH]), timeout=15)
    yield runner
    await asyncio.to_thread(runner.__exit__, None, None, None)
    if os.environ.get("SSMD_TEST_KOPF_LOG"):
        Path(os.environ["SSMD_TEST_KOPF_LOG"]).write_text(runner.output)  # noqa: ASYNC240
    assert runner.exception is None, runner.output
