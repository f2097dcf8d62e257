"""Helpers for the operator tests: polling with a deadline, kubectl and ssmd as processes,
reading the emulator's state, and the example Environment pointed at a test nats-server."""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kmock
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRDS_FILE = ROOT / "crds" / "ssmd.io_crds.yaml"
BIN = Path(sys.executable).parent
ENVS = kmock.resource("ssmd.io/v1alpha1/ssmdenvironments")
FEEDS = kmock.resource("ssmd.io/v1alpha1/ssmdfeeds")
DEPLOYMENTS = kmock.resource("apps/v1/deployments")
CONFIGMAPS = kmock.resource("v1/configmaps")
SERVICES = kmock.resource("v1/services")
PVCS = kmock.resource("v1/persistentvolumeclaims")
COMPONENTS = ("secmaster", "archiver", "gateway", "connector")


async def eventually(fn: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll ``fn`` (sync or async) until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = fn()
            if inspect.isawaitable(result):
                result = await result
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as exc:
            result, last = None, exc
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last error: {last!r})")
        await asyncio.sleep(interval)


def live(
    k8s: Any, resource: Any, name: str, namespace: str | None = "default"
) -> dict[str, Any] | None:
    key = (resource, namespace, name)
    if key in k8s.objects and not k8s.objects[key].deleted:
        return dict(k8s.objects[key].raw)
    return None


def status(k8s: Any, name: str) -> dict[str, Any]:
    return dict((live(k8s, ENVS, name) or {}).get("status") or {})


def cond(k8s: Any, name: str, type_: str) -> dict[str, Any]:
    return next((c for c in status(k8s, name).get("conditions") or [] if c["type"] == type_), {})


def replicas(k8s: Any, env: str) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for c in COMPONENTS:
        d = live(k8s, DEPLOYMENTS, f"{env}-{c}")
        out[c] = None if d is None else d["spec"]["replicas"]
    return out


async def run(*args: str, stdin: bytes | None = None, check: bool = True) -> str:
    """A process, without blocking the loop that serves the emulator."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else None,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(os.environ),
    )
    out, _ = await proc.communicate(stdin)
    text = out.decode()
    if check:
        assert proc.returncode == 0, f"{args}: exit {proc.returncode}: {text}"
    return text


async def kubectl(*args: str, stdin: bytes | None = None, check: bool = True) -> str:
    return await run(str(BIN / "kubectl"), *args, stdin=stdin, check=check)


async def ssmd(*args: str, check: bool = True) -> str:
    return await run(sys.executable, "-m", "ssmd.cli.main", *args, check=check)


def kalshi_document(nats_url: str, **spec_overrides: Any) -> dict[str, Any]:
    """environments/kalshi.yaml with the transport pointed at the test's nats-server (one
    server, so one stream replica); the file itself is unchanged."""
    doc = yaml.safe_load((ROOT / "environments" / "kalshi.yaml").read_text())
    doc["metadata"]["namespace"] = "default"
    doc["spec"]["transport"]["url"] = nats_url
    doc["spec"]["transport"]["stream"]["replicas"] = 1
    doc["spec"].update(spec_overrides)
    return dict(doc)


def write_yaml(path: Path, *docs: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def env_body(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "apiVersion": "ssmd.io/v1alpha1", "kind": "Environment"}


async def make_available(kube: Any, env: str, components: tuple[str, ...] = COMPONENTS) -> None:
    """Play the Deployment controller's part: report every wanted replica available."""
    for c in components:
        d = await kube.get("Deployment", "default", f"{env}-{c}")
        n = d["spec"]["replicas"]
        body = {"status": {"replicas": n, "readyReplicas": n, "availableReplicas": n,
                           "observedGeneration": d["metadata"]["generation"]}}  # fmt: skip
        await kube.patch("Deployment", "default", f"{env}-{c}", body, sub="status")


async def event_reasons(kube: Any, env: str) -> list[str]:
    events = await kube.list("Event", "default")
    mine = [e for e in events if (e.get("involvedObject") or {}).get("name") == env]
    mine.sort(key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [e["reason"] for e in mine]
