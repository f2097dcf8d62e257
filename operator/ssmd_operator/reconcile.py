"""Environment reconciliation: one pass from the spec to children, streams and status.

Called by the create/update/resume handlers and by the timer (which repairs drift and
follows the schedule). Every pass re-reads the Environment, so a timer never acts on a
stale body."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ssmd import subjects
from ssmd.spec import Environment, SpecError, validate_document
from ssmd.spec.types import parse_key_ref
from ssmd_operator import (
    children,
    config,
    inventory,
    keys,
    pipeline,
    schedule,
    status,
    streams,
    versions,
)
from ssmd_operator.children import SPEC_HASH, Component, Owner
from ssmd_operator.kube import Kube, KubeError

# (reason, message, warning) -> a Kubernetes Event on the Environment
Emit = Callable[[str, str, bool], None]
MAX_STEPS = 10


@dataclass
class Outcome:
    patch: dict[str, Any] = field(default_factory=dict)  # the status written
    retry_reason: str | None = None  # set when the pass should be retried soon
    deleted: bool = False


def _no_emit(reason: str, message: str, warning: bool) -> None:
    pass


def validate(body: dict[str, Any]) -> Environment:
    meta = body.get("metadata") or {}
    doc = {
        "apiVersion": body.get("apiVersion", "ssmd.io/v1alpha1"),
        "kind": "Environment",
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
        "spec": body.get("spec") or {},
    }
    env = validate_document(doc, f"{meta.get('namespace')}/{meta.get('name')}")
    assert isinstance(env, Environment)
    if env.spec.transport.url is None:
        raise SpecError(
            "spec",
            ["spec.transport.url: required on Kubernetes (no embedded nats-server runs there)"],
        )
    return env


async def _write_status(kube: Kube, ns: str, name: str, patch: dict[str, Any]) -> None:
    await kube.patch("Environment", ns, name, {"status": patch}, sub="status")


async def _record_version(
    kube: Kube, env: Environment, owner: Owner, spec: dict[str, Any], emit: Emit
) -> tuple[list[dict[str, Any]], int | None]:
    existing = await kube.list("ConfigMap", owner.namespace, versions.selector(env.name))
    chash = versions.config_hash(spec)
    new, prune = versions.plan(existing, chash)
    if new is not None:
        cm = versions.version_configmap(owner, new, spec, chash, status.now_iso())
        try:
            existing.append(await kube.create(cm))
        except KubeError as exc:
            if exc.status != 409:
                raise
        emit("VersionRecorded", f"spec version {new} (config {chash})", False)
    for name in prune:
        await kube.delete("ConfigMap", owner.namespace, name)
    records = sorted(
        (versions.record_of(cm) for cm in existing if cm["metadata"]["name"] not in prune),
        key=lambda r: r["version"],
    )[-versions.KEEP :]
    return records, (records[-1]["version"] if records else None)


async def _apply(kube: Kube, desired: dict[str, Any], existing: dict[str, Any] | None) -> str:
    meta = desired["metadata"]
    if existing is None:
        try:
            await kube.create(desired)
            return "created"
        except KubeError as exc:
            if exc.status != 409:
                raise
            existing = await kube.get(desired["kind"], meta["namespace"], meta["name"])
            if existing is None:
                raise
    old_hash = ((existing.get("metadata") or {}).get("annotations") or {}).get(SPEC_HASH)
    same_replicas = (
        desired["kind"] != "Deployment"
        or (existing.get("spec") or {}).get("replicas") == desired["spec"]["replicas"]
    )
    if old_hash == meta["annotations"][SPEC_HASH] and same_replicas:
        return "unchanged"
    if desired["kind"] == "PersistentVolumeClaim":
        return "unchanged"  # a claim's spec is (mostly) immutable; the data must stay anyway
    body = dict(desired)
    body["metadata"] = {**meta, "resourceVersion": existing["metadata"].get("resourceVersion")}
    if "status" in existing:
        body["status"] = existing["status"]  # ignored by a real API server; kept by emulators
    if desired["kind"] == "Service":
        # Allocated by the API server and immutable: a replace must carry them over.
        kept = ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy")
        old_spec = existing.get("spec") or {}
        body["spec"] = {**desired["spec"], **{k: old_spec[k] for k in kept if k in old_spec}}
    try:
        await kube.replace(body)
    except KubeError as exc:
        if exc.status != 409:
            raise
        return "conflict"  # changed meanwhile (someone scaled it?): the next pass decides
    return "updated"


def _available(deployment: dict[str, Any]) -> int:
    """Available replicas, counted only when the Deployment controller has seen the current
    generation (a just-scaled Deployment still reports its old availability)."""
    st = deployment.get("status") or {}
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    if int(st.get("observedGeneration") or 0) < generation:
        return 0
    return int(st.get("availableReplicas") or 0)


def _ready(*checks: tuple[bool, str, str]) -> tuple[bool, str, str]:
    """Ready from its parts, each (ok, reason, message) in order of precedence: the first
    one that is not ok gives Ready its reason and message."""
    for ok, reason, message in checks:
        if not ok:
            return False, reason, message
    return True, "Ready", "pipeline reconciled"


def _pipeline_state(st: dict[str, Any]) -> dict[str, Any]:
    p = dict(st.get("pipeline") or {})
    p.setdefault("steps", [])
    return p


async def reconcile(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    now: datetime | None = None,
    emit: Emit = _no_emit,
) -> Outcome:
    body = await kube.get("Environment", namespace, name)
    if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return Outcome(deleted=True)
    now = now or datetime.now(UTC)
    meta = body["metadata"]
    generation = int(meta.get("generation") or 1)
    st: dict[str, Any] = dict(body.get("status") or {})
    old_conditions = list(st.get("conditions") or [])

    def refuse(cond_type: str, reason: str, message: str) -> Outcome:
        conds = {c["type"]: c for c in old_conditions}
        conds[cond_type] = status.condition(cond_type, False, reason, message, generation)
        conds["Ready"] = status.condition("Ready", False, reason, message, generation)
        ordered = [conds[t] for t in status.CONDITION_TYPES if t in conds]
        patch = {
            "observedGeneration": generation,
            "conditions": status.merge_conditions(old_conditions, ordered),
        }
        return Outcome(patch=patch)

    try:
        env = validate(body)
    except SpecError as exc:
        emit("InvalidSpec", "; ".join(exc.problems), True)
        out = refuse("Ready", "InvalidSpec", "; ".join(exc.problems))
        await _write_status(kube, namespace, name, out.patch)
        return out
    recorded_stream = (st.get("stream") or {}).get("name")
    refusal = streams.rename_refused(env, recorded_stream)
    if refusal:
        out = refuse("StreamReady", "StreamRenameRefused", refusal)
        await _write_status(kube, namespace, name, out.patch)
        return out

    owner = Owner(name=name, namespace=namespace, uid=meta["uid"])
    spec_doc = body.get("spec") or {}
    records, current_version = await _record_version(kube, env, owner, spec_doc, emit)

    # --- NATS: streams, stream state, status documents
    secret = None
    if env.spec.transport.credentials:
        key = parse_key_ref(env.spec.transport.credentials)[0]
        secret = await kube.get("Secret", namespace, children.secret_name(name, key))
    outcome = await streams.reconcile_streams(env, streams.credentials(env, secret))
    docs = outcome.components

    # --- what should run: schedule / suspend, then the ordered steps
    enabled = children.enabled_components(env)
    running: dict[Component, int] = {c: children.running_replicas(env, c) for c in enabled}
    target = schedule.desired_target(env.spec.schedule, now, suspend=env.spec.suspend)
    existing = {
        c: await kube.get("Deployment", namespace, children.deployment_name(name, c))
        for c in enabled
    }
    current: dict[Component, int] = {
        c: int((d.get("spec") or {}).get("replicas") or 0) for c, d in existing.items() if d
    }
    available: dict[Component, int] = {c: _available(d) for c, d in existing.items() if d}
    # Keys first: the connector is not started until every required key is set. One that
    # is already running keeps running when a key expires (KeysReady and the alert say so).
    keys_ok, keys_cond = await keys.keys_ready(kube, env, namespace, now)
    if not keys_ok and "connector" in running and current.get("connector", 0) == 0:
        running["connector"] = 0
    pipe = _pipeline_state(st)
    if pipe.get("target") != target:
        pipe.update(target=target, since=time.time())
    if not any(existing.values()) and target == "up":
        replicas: dict[Component, int] = dict(running)  # a new pipeline starts all at once
    else:
        replicas = {c: current.get(c, 0) for c in enabled}
        for _ in range(len(enabled) + 1):
            obs = pipeline.Observed(
                current=replicas,
                available=available,
                archiver_closed=pipeline.archiver_reports_closed(
                    docs.get("archiver"), float(pipe.get("since") or 0)
                ),
                waited_s=time.time() - float(pipe.get("since") or time.time()),
            )
            step = pipeline.next_step(target, running, obs)
            if step is None:
                break
            replicas = {**replicas, **step.replicas}
            available = {**available, **{c: 0 for c in step.replicas}}  # just changed
            pipe["since"] = time.time()  # the next step waits from here
            pipe["step"] = step.reason
            pipe["steps"] = [
                *pipe["steps"],
                {"time": status.now_iso(), "step": step.reason, "message": step.message},
            ][-MAX_STEPS:]
            emit(step.reason, step.message, step.warning)

    # --- children
    for desired in children.desired_children(env, owner, replicas):
        kind, cname = desired["kind"], desired["metadata"]["name"]
        have = (
            existing.get(desired["metadata"]["labels"]["app.kubernetes.io/component"])
            if kind == "Deployment"
            else await kube.get(kind, namespace, cname)
        )
        action = await _apply(kube, desired, have)
        if action == "updated" and kind == "Deployment" and have is not None:
            emit("DeploymentUpdated", f"{cname}: {action}", False)
        elif action == "created" and kind == "Deployment" and any(existing.values()):
            emit("DeploymentRecreated", f"{cname} was missing and has been created", True)
    for c in children.COMPONENTS:
        if c not in enabled:
            await kube.delete("Deployment", namespace, children.deployment_name(name, c))
    if "gateway" not in enabled:
        await kube.delete("Service", namespace, children.deployment_name(name, "gateway"))

    # --- status
    comp_ok, comp_reason, comp_msg = status.components_ready(
        {c: replicas.get(c, 0) for c in enabled}, {c: n for c, n in available.items()}
    )
    obs = pipeline.Observed(current=replicas, available=available)
    phase = pipeline.phase_for(target, running, obs, suspend=env.spec.suspend)
    if not comp_ok and phase == "Running":
        phase = "Starting"
    if target == "down" and env.spec.schedule and not env.spec.suspend:
        nxt = schedule.next_transition(env.spec.schedule, now)
        comp_msg += f"; next startup {nxt.strftime('%Y-%m-%d %H:%M %Z')}"
    ready_ok, ready_reason, ready_msg = _ready(
        (keys_ok, keys_cond["reason"], keys_cond["message"]),
        (outcome.ok, outcome.reason, outcome.message),
        (comp_ok, comp_reason, comp_msg),
    )
    conds = [
        status.condition(
            "KeysReady", keys_ok, keys_cond["reason"], keys_cond["message"], generation
        ),
        status.condition("StreamReady", outcome.ok, outcome.reason, outcome.message, generation),
        status.condition("ComponentsReady", comp_ok, comp_reason, comp_msg, generation),
        status.condition("Ready", ready_ok, ready_reason, ready_msg, generation),
    ]
    patch: dict[str, Any] = {
        "phase": phase,
        "observedGeneration": generation,
        "conditions": status.merge_conditions(old_conditions, conds),
        "feed": env.spec.feed.name,
        "versions": records,
        "currentVersion": current_version,
        "pipeline": pipe,
        "source": "simulator" if env.spec.feed.is_simulated else "exchange",
    }
    if outcome.ok:
        patch["stream"] = outcome.stream
        patch.update(status.registry(docs, env.spec.feed.is_simulated, now.date()))
        patch["inventorySource"] = "archiver-status"
    if config.ARCHIVE_INVENTORY and env.spec.storage.s3 is not None:
        await _inventory_from_manifests(kube, env, namespace, now, patch)
    elif not recorded_stream:
        # Remember the stream name before it exists, so a later rename is refused too.
        patch["stream"] = {"name": subjects.stream_name(name, env.spec.feed.name)}
    await _write_status(kube, namespace, name, patch)
    return Outcome(patch=patch, retry_reason=None if outcome.ok else outcome.reason)


async def _inventory_from_manifests(
    kube: Kube, env: Environment, namespace: str, now: datetime, patch: dict[str, Any]
) -> None:
    """Replace the inventory with one read from the S3 archive's day manifests; on failure
    keep the archiver's own figures and say why."""
    key = inventory.storage_key(env)
    secret = (
        await kube.get("Secret", namespace, children.secret_name(env.name, key)) if key else None
    )
    try:
        days = await inventory.from_s3(env, secret, now.date())
    except Exception as exc:  # the store's errors are many types; the status must not fail
        patch["inventoryError"] = f"{exc.__class__.__name__}: {str(exc)[:200]}"
        return
    patch["inventory"] = days
    patch["inventorySource"] = "manifests"
    patch["inventoryError"] = None
    last = next((d["date"] for d in days if d["files"] > 0), None)
    if last is not None:
        patch["lastArchiveDate"] = last


async def finalize(kube: Kube, body: dict[str, Any], emit: Emit = _no_emit) -> list[str]:
    """On deletion: children go with their owner (ownerReferences); the streams stay unless
    ``spec.transport.stream.deletePolicy: delete`` -- data is never deleted by default."""
    try:
        env = validate(body)
    except SpecError:
        return []  # never reconciled into streams
    if env.spec.transport.stream.delete_policy != "delete":
        emit(
            "StreamKept",
            f"stream {subjects.stream_name(env.name, env.spec.feed.name)} kept "
            "(deletePolicy: retain)",
            False,
        )
        return []
    secret = None
    if env.spec.transport.credentials:
        key = parse_key_ref(env.spec.transport.credentials)[0]
        secret = await kube.get(
            "Secret", env.metadata.namespace or "default", children.secret_name(env.name, key)
        )
    deleted = await streams.delete_streams(env, streams.credentials(env, secret))
    emit(
        "StreamDeleted", f"deleted {', '.join(deleted) or 'nothing'} (deletePolicy: delete)", False
    )
    return deleted
