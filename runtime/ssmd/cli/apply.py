"""``ssmd env apply``: validate, check against the cluster, apply, wait for Ready."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import click

from ssmd.cli.errors import UserError
from ssmd.cli.preflight import cluster_checks
from ssmd.keys.cluster import Cluster, ClusterError
from ssmd.spec import Environment, Feed, Key, SpecError
from ssmd.spec.loader import load_file

PLURALS = {"Environment": "ssmdenvironments", "Feed": "ssmdfeeds", "Key": "ssmdkeys"}
POLL_S = 0.5


def _document(resource: Environment | Feed | Key, namespace: str) -> dict[str, Any]:
    doc = resource.model_dump(by_alias=True, mode="json", exclude_none=True, exclude={"status"})
    meta = resource.metadata.model_dump(exclude_none=True)
    meta["namespace"] = namespace
    for empty in ("labels", "annotations"):
        if not meta.get(empty):
            meta.pop(empty, None)
    doc["metadata"] = meta
    return doc


async def _apply_one(c: Cluster, doc: dict[str, Any]) -> tuple[str, int]:
    """Create, or replace the spec of, one resource; returns (action, generation)."""
    plural, meta = PLURALS[doc["kind"]], doc["metadata"]
    current = await c.get(plural, meta["namespace"], meta["name"])
    if current is None:
        obj = await c.create(plural, doc)
        return "created", int(obj.get("metadata", {}).get("generation") or 1)
    body = dict(doc)
    cur_meta = current.get("metadata") or {}
    body["metadata"] = {
        **cur_meta,
        "labels": {**(cur_meta.get("labels") or {}), **meta.get("labels", {})},
        "annotations": {**(cur_meta.get("annotations") or {}), **meta.get("annotations", {})},
    }
    if doc["kind"] == "Key" and not (doc.get("spec") or {}).get("encryptedData"):
        # An exported Key (no values) must not wipe values set with `ssmd key set`.
        body.setdefault("spec", {})["encryptedData"] = (current.get("spec") or {}).get(
            "encryptedData"
        ) or {}
    if "status" in current:
        body["status"] = current["status"]
    if body.get("spec") == current.get("spec"):
        return "unchanged", int(cur_meta.get("generation") or 1)
    obj = await c.request(
        "PUT",
        f"/apis/ssmd.io/v1alpha1/namespaces/{meta['namespace']}/{plural}/{meta['name']}",
        body,
    )
    return "configured", int(obj.get("metadata", {}).get("generation") or 1)


def _conditions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type"): c for c in (body.get("status") or {}).get("conditions") or []}


async def _wait_ready(
    c: Cluster, namespace: str, name: str, generation: int, timeout: float
) -> int:
    deadline = time.monotonic() + timeout
    seen: dict[str, tuple[str, str, str]] = {}
    while True:
        body = await c.get("ssmdenvironments", namespace, name) or {}
        st = body.get("status") or {}
        for t, cond in _conditions(body).items():
            state = (cond.get("status", ""), cond.get("reason", ""), cond.get("message", ""))
            if seen.get(t) != state:
                seen[t] = state
                mark = {"True": "✓", "False": "…"}.get(state[0], "?")
                click.echo(f"  {mark} {t}: {state[1]} {state[2]}".rstrip())
        ready = _conditions(body).get("Ready", {})
        if ready.get("status") == "True" and int(st.get("observedGeneration") or 0) >= generation:
            click.echo(f"✓ {name} is Ready (phase {st.get('phase', '?')})")
            return 0
        if time.monotonic() > deadline:
            click.echo(
                f"✗ {name} is not Ready after {timeout:.0f}s: {ready.get('reason', 'no status yet')} "
                f"{ready.get('message', '(is the operator running?)')}".rstrip(),
                err=True,
            )
            return 1
        await asyncio.sleep(POLL_S)


async def apply_file(file: Path, namespace: str | None, *, wait: bool, timeout: float) -> int:
    try:
        resources = load_file(file)
    except SpecError as exc:
        raise UserError(str(exc)) from None
    envs = [r for r in resources if isinstance(r, Environment)]
    if len(envs) != 1:
        raise UserError(f"{file}: expected one Environment, found {len(envs)}")
    env = envs[0]
    ns = namespace or env.metadata.namespace or "default"
    try:
        async with await Cluster.connect() as c:
            for r in resources:
                if not isinstance(r, Environment):
                    action, _ = await _apply_one(c, _document(r, ns))
                    click.echo(f"✓ {r.kind}/{r.metadata.name} {action}")
            checks = await cluster_checks(env, ns, cluster=c)
            failing = [ch for ch in checks if not ch.ok]
            for ch in checks:
                click.echo(f"  {ch.line()}")
            if failing:
                click.echo(
                    f"✗ refusing to apply Environment/{env.name}: {failing[0].line()[2:]}", err=True
                )
                return 1
            action, generation = await _apply_one(c, _document(env, ns))
            click.echo(f"✓ Environment/{env.name} {action}")
            if not wait:
                return 0
            return await _wait_ready(c, ns, env.name, generation, timeout)
    except ClusterError as exc:
        raise UserError(str(exc)) from None
