"""Helpers for the operator tests: polling with a deadline, kubectl and ssmd as processes,
reading the emulator's state, the example Environment pointed at a test nats-server, and
its keys set the way `ssmd key set` and the sealed-secrets controller would."""

from __future__ import annotations

import asyncio
import base64
import inspect
import os
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kmock
import yaml

from ssmd.keys.manage import seal_key
from ssmd.keys.seal import load_certificate_file
from ssmd.keys.status import resource_name
from ssmd.spec import Environment, validate_document
from tests.keys_support import TEST_CERT, controller_private_key, secret, unseal

ROOT = Path(__file__).resolve().parents[2]
CRDS_FILE = ROOT / "crds" / "ssmd.io_crds.yaml"
BIN = Path(sys.executable).parent
ENVS = kmock.resource("ssmd.io/v1alpha1/ssmdenvironments")
FEEDS = kmock.resource("ssmd.io/v1alpha1/ssmdfeeds")
DEPLOYMENTS = kmock.resource("apps/v1/deployments")
CONFIGMAPS = kmock.resource("v1/configmaps")
SERVICES = kmock.resource("v1/services")
PVCS = kmock.resource("v1/persistentvolumeclaims")
KEYS = kmock.resource("ssmd.io/v1alpha1/ssmdkeys")
SEALED = kmock.resource("bitnami.com/v1alpha1/sealedsecrets")
SEALED_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "sealedsecrets.bitnami.com"},
    "spec": {
        "group": "bitnami.com",
        "scope": "Namespaced",
        "names": {"kind": "SealedSecret", "plural": "sealedsecrets", "singular": "sealedsecret"},
        "versions": [
            {"name": "v1alpha1", "served": True, "storage": True, "subresources": {"status": {}}}
        ],
    },
}
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


def _environment(doc: Mapping[str, Any]) -> Environment:
    env = validate_document(dict(doc), f"Environment {doc['metadata']['name']}")
    assert isinstance(env, Environment)
    return env


def key_state(k8s: Any, env: str, key: str) -> str | None:
    """The Key's ``status.state`` as the operator last wrote it (None: not observed yet)."""
    body = live(k8s, KEYS, resource_name(env, key)) or {}
    return (body.get("status") or {}).get("state")


async def set_key(
    kube: Any, k8s: Any, doc: Mapping[str, Any], key: str, values: Mapping[str, str]
) -> None:
    """`ssmd key set` for the Environment ``doc`` (sealed into its Key with the test
    certificate; the Key is created if the operator has not made it yet), then the
    sealed-secrets controller's part: unseal the SealedSecret into the Secret."""
    k8s.register_crd(SEALED_CRD)  # idempotent: the controller's CRD is "installed"
    env = _environment(doc)
    name = resource_name(env.name, key)
    existing = await kube.get("Key", "default", name)
    manifest = seal_key(
        env,
        key,
        {f: v.encode() for f, v in values.items()},
        public_key=load_certificate_file(TEST_CERT),
        namespace="default",
        scope="strict",
        existing=existing,
        now=datetime.now(UTC),
        actor="test",
    )
    if existing is None:
        await kube.create(manifest)
    else:  # a merge patch keeps the operator's ownerReference on the Key
        meta = {"annotations": manifest["metadata"]["annotations"]}
        await kube.patch("Key", "default", name, {"metadata": meta, "spec": manifest["spec"]})
    sealed = manifest["spec"]["encryptedData"]
    ss = await eventually(
        lambda: (s := live(k8s, SEALED, name)) and s["spec"]["encryptedData"] == sealed and s
    )
    data = {
        f: base64.b64encode(
            unseal(controller_private_key(), v, f"default/{name}".encode())
        ).decode()
        for f, v in ss["spec"]["encryptedData"].items()
    }
    secret_body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": dict(ss["spec"]["template"]["metadata"].get("labels") or {}),
        },
        "data": data,
    }
    current = await kube.get("Secret", "default", name)
    if current is None:
        await kube.create(secret_body)
    else:
        secret_body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await kube.replace(secret_body)


async def set_required_keys(kube: Any, k8s: Any, doc: Mapping[str, Any]) -> None:
    """Every required key of the Environment ``doc`` set with test-only values, and seen as
    set by the operator (its Key status), so KeysReady holds from the next reconcile on."""
    spec = _environment(doc)
    env = spec.name
    required = sorted(k for k, r in spec.spec.keys.items() if r.required)
    for key in required:
        fields = spec.spec.keys[key].fields
        values = {f: secret(f"test-only-{env}-{key}-{f}-0c4e9a") for f in fields}
        await set_key(kube, k8s, doc, key, values)
    await eventually(lambda: all(key_state(k8s, env, k) == "set" for k in required))
