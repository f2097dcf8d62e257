"""Key resources: Key → SealedSecret → (sealed-secrets controller) → Secret → Key status.

* Every Key with ``spec.encryptedData`` gets a ``bitnami.com/v1alpha1`` SealedSecret of the
  same name, owned by the Key; the controller unseals it into a Secret of that name.
* The Secret is watched (label ``ssmd.io/key``, copied from the SealedSecret's template), and
  the Key's status says which fields it holds (names only), when the values were last
  rotated and when they expire; ``ssmd_key_expires_in_days`` exports the expiry.
* Every key an Environment's ``spec.keys`` names gets a Key (empty, owned by the
  Environment) if none exists, so ``kubectl get ssmdkeys`` lists what still has to be set.
* :func:`keys_ready` is what the Environment reconcile asks before starting the connector.

No value is ever read here: only the Secret's data *keys*."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kopf
from prometheus_client import Gauge

from ssmd.keys.seal import sealed_secret_manifest
from ssmd.keys.status import (
    ENV_LABEL,
    KEY_LABEL,
    LAST_ROTATED_ANNOTATION,
    evaluate_key,
    format_time,
    key_status,
    keys_ready_condition,
    parse_time,
    resource_name,
)
from ssmd.spec import Environment
from ssmd.spec.key import KeyStatus
from ssmd_operator.children import digest
from ssmd_operator.kube import Kube, KubeError

GROUP, VERSION, KEYS, ENVIRONMENTS = "ssmd.io", "v1alpha1", "ssmdkeys", "ssmdenvironments"
SEALED_API = "bitnami.com/v1alpha1"
SEALED_HASH = "ssmd.io/sealed-hash"
KEY_INTERVAL_S = float(os.environ.get("SSMD_OPERATOR_KEY_INTERVAL", "300"))

KEY_EXPIRES_IN_DAYS = Gauge(
    "ssmd_key_expires_in_days",
    "Days until a key's values expire (lastRotated + rotationDays); negative once expired.",
    ["environment", "key_name"],
)

_locks: dict[tuple[str, str], asyncio.Lock] = {}


def _lock(namespace: str, name: str) -> asyncio.Lock:
    return _locks.setdefault((namespace, name), asyncio.Lock())


def _sealed_path(namespace: str, name: str | None = None) -> str:
    path = f"/apis/{SEALED_API}/namespaces/{namespace}/sealedsecrets"
    return f"{path}/{name}" if name else path


def _secret_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/secrets/{name}"


async def _get(kube: Kube, path: str) -> dict[str, Any] | None:
    try:
        return await kube.request("GET", path)
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise


def key_names(body: dict[str, Any]) -> tuple[str, str]:
    """(environment, key name) of a Key: from its labels, else split from ``{env}-{key}``."""
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    env, key = labels.get(ENV_LABEL), labels.get(KEY_LABEL)
    if env and key:
        return str(env), str(key)
    env_part, _, key_part = str(meta.get("name", "")).partition("-")
    return env_part, key_part or env_part


def desired_sealed_secret(body: dict[str, Any]) -> dict[str, Any] | None:
    """The SealedSecret for a Key, or None while the Key has no sealed values."""
    meta, spec = body["metadata"], body.get("spec") or {}
    data = dict(spec.get("encryptedData") or {})
    if not data:
        return None
    env, key = key_names(body)
    owner = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Key",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    manifest = sealed_secret_manifest(
        meta["name"],
        meta["namespace"],
        data,
        scope=spec.get("scope") or "strict",
        labels={ENV_LABEL: env, KEY_LABEL: key, "app.kubernetes.io/managed-by": "ssmd-operator"},
        owner_references=[owner],
    )
    m_meta = manifest["metadata"]
    assert isinstance(m_meta, dict)
    m_meta.setdefault("annotations", {})[SEALED_HASH] = digest(manifest["spec"])
    return manifest


def observe(body: dict[str, Any], secret: dict[str, Any] | None, now: datetime) -> KeyStatus:
    """The Key's status from what the Secret holds (names of non-empty fields only)."""
    meta, spec = body["metadata"], body.get("spec") or {}
    fields = list(spec.get("fields") or [])
    present = {k for k, v in ((secret or {}).get("data") or {}).items() if v}
    rotated = parse_time((meta.get("annotations") or {}).get(LAST_ROTATED_ANNOTATION))
    if rotated is None and secret is not None:
        rotated = parse_time((secret.get("metadata") or {}).get("creationTimestamp"))
    ev = evaluate_key(fields, present, rotated, spec.get("rotationDays"), now)
    env, key = key_names(body)
    days = ev.expires_in_days(now)
    if days is None:
        try:
            KEY_EXPIRES_IN_DAYS.remove(env, key)
        except KeyError:
            pass
    else:
        KEY_EXPIRES_IN_DAYS.labels(environment=env, key_name=key).set(round(days, 3))
    return key_status(
        ev,
        secret_name=(secret or {}).get("metadata", {}).get("name"),
        observed_generation=meta.get("generation"),
        now=now,
    )


def _status_patch(old: dict[str, Any], new: KeyStatus) -> dict[str, Any]:
    doc = new.model_dump(by_alias=True, exclude_none=True, mode="json")
    prev = {c.get("type"): c for c in old.get("conditions") or []}
    for c in doc.get("conditions") or []:
        p = prev.get(c["type"])
        if p is not None and p.get("status") == c["status"] and p.get("lastTransitionTime"):
            c["lastTransitionTime"] = p["lastTransitionTime"]  # only a change moves the time
    return doc


Emit = Callable[[dict[str, Any], str, str], None]


def _no_emit(body: dict[str, Any], reason: str, message: str) -> None:
    pass


async def reconcile_key(
    kube: Kube, namespace: str, name: str, *, now: datetime | None = None, emit: Emit = _no_emit
) -> KeyStatus | None:
    """One pass for one Key; returns the status written (None when the Key is gone)."""
    body = await kube.get("Key", namespace, name)
    if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return None
    now = now or datetime.now(UTC)
    desired = desired_sealed_secret(body)
    current = await _get(kube, _sealed_path(namespace, name))
    if desired is not None:
        want_hash = desired["metadata"]["annotations"][SEALED_HASH]
        if current is None:
            await kube.request("POST", _sealed_path(namespace), desired)
            emit(body, "SealedSecretCreated", f"SealedSecret {name} created")
        elif ((current.get("metadata") or {}).get("annotations") or {}).get(
            SEALED_HASH
        ) != want_hash:
            desired["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
            await kube.request("PUT", _sealed_path(namespace, name), desired)
            emit(body, "SealedSecretUpdated", f"SealedSecret {name} updated")
    secret = await _get(kube, _secret_path(namespace, name))
    st = observe(body, secret, now)
    patch = _status_patch(body.get("status") or {}, st)
    if patch != {k: v for k, v in (body.get("status") or {}).items() if k in patch}:
        await kube.patch("Key", namespace, name, {"status": patch}, sub="status")
    return st


def empty_key(env: Environment, key: str, namespace: str, env_uid: str) -> dict[str, Any]:
    req = env.spec.keys[key]
    spec: dict[str, Any] = {
        "type": req.type,
        "description": req.description,
        "required": req.required,
        "fields": list(req.fields),
        "encryptedData": {},
    }
    if req.rotation_days is not None:
        spec["rotationDays"] = req.rotation_days
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Key",
        "metadata": {
            "name": resource_name(env.name, key),
            "namespace": namespace,
            "labels": {ENV_LABEL: env.name, KEY_LABEL: key},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "Environment",
                    "name": env.name,
                    "uid": env_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }


async def ensure_keys(kube: Kube, body: dict[str, Any]) -> list[str]:
    """Create the Keys an Environment names that do not exist yet; returns their names."""
    from ssmd_operator.reconcile import validate

    meta = body["metadata"]
    namespace = meta.get("namespace") or "default"
    try:
        env = validate(body)
    except ValueError:
        return []  # the Environment reconcile reports an invalid spec
    created = []
    for key in sorted(env.spec.keys):
        name = resource_name(env.name, key)
        if await kube.get("Key", namespace, name) is None:
            try:
                await kube.create(empty_key(env, key, namespace, meta["uid"]))
                created.append(name)
            except KubeError as exc:
                if exc.status != 409:  # made meanwhile (e.g. by `ssmd key set`)
                    raise
    return created


async def key_statuses(kube: Kube, env: Environment, namespace: str) -> dict[str, KeyStatus | None]:
    """Status of each Key the Environment names (None: no Key, or not observed yet)."""
    out: dict[str, KeyStatus | None] = {}
    for key in env.spec.keys:
        body = await kube.get("Key", namespace, resource_name(env.name, key))
        raw = (body or {}).get("status") or {}
        out[key] = KeyStatus.model_validate(raw) if raw.get("state") else None
    return out


async def keys_ready(
    kube: Kube, env: Environment, namespace: str, now: datetime | None = None
) -> tuple[bool, dict[str, Any]]:
    """(ready, KeysReady condition as a status dict) for the Environment reconcile: when not
    ready, the connector must not run; the message names the key and the command to run."""
    cond = keys_ready_condition(
        env,
        await key_statuses(kube, env, namespace),
        now=now or datetime.now(UTC),
        namespace=namespace,
    )
    return cond.status == "True", {
        "type": cond.type,
        "status": cond.status,
        "reason": cond.reason,
        "message": cond.message,
    }


# ---------------------------------------------------------------- kopf registrations


@kopf.on.startup()
def _metrics(**_: Any) -> None:
    port = os.environ.get("SSMD_OPERATOR_METRICS_PORT")
    if port:
        from prometheus_client import start_http_server

        start_http_server(int(port))


def _kopf_emit(body: dict[str, Any], reason: str, message: str) -> None:
    kopf.info(body, reason=reason, message=message)  # type: ignore[arg-type]  # a dict is fine


async def _reconcile(namespace: str | None, name: str) -> None:
    namespace = namespace or "default"
    async with _lock(namespace, name), await Kube.connect() as kube:
        await reconcile_key(kube, namespace, name, emit=_kopf_emit)


@kopf.on.create(GROUP, VERSION, KEYS)
@kopf.on.update(GROUP, VERSION, KEYS)
@kopf.on.resume(GROUP, VERSION, KEYS)
async def key_changed(namespace: str | None, name: str, **_: Any) -> None:
    await _reconcile(namespace, name)


@kopf.timer(GROUP, VERSION, KEYS, interval=KEY_INTERVAL_S, initial_delay=KEY_INTERVAL_S)
async def key_timer(namespace: str | None, name: str, **_: Any) -> None:
    await _reconcile(namespace, name)  # expiry moves with time even when nothing changes


@kopf.on.delete(GROUP, VERSION, KEYS, optional=True)
async def key_deleted(body: kopf.Body, name: str, namespace: str | None, **_: Any) -> None:
    env, key = key_names(dict(body))
    try:
        KEY_EXPIRES_IN_DAYS.remove(env, key)
    except KeyError:
        pass
    _locks.pop((namespace or "default", name), None)


@kopf.on.event("", "v1", "secrets", labels={KEY_LABEL: kopf.PRESENT})
async def key_secret_event(namespace: str | None, name: str, type: str | None, **_: Any) -> None:
    """The controller made, changed or removed a Key's Secret: refresh that Key's status."""
    if type is None:  # the initial listing; resume/timers cover it
        return
    await _reconcile(namespace, name)


@kopf.on.create(GROUP, VERSION, ENVIRONMENTS)
@kopf.on.update(GROUP, VERSION, ENVIRONMENTS, field="spec.keys")
@kopf.on.resume(GROUP, VERSION, ENVIRONMENTS)
async def environment_keys(body: kopf.Body, **_: Any) -> None:
    async with await Kube.connect() as kube:
        created = await ensure_keys(kube, dict(body))
    if created:
        kopf.info(body, reason="KeysCreated", message=f"created empty Key(s): {', '.join(created)}")


__all__ = [
    "KEY_EXPIRES_IN_DAYS",
    "desired_sealed_secret",
    "ensure_keys",
    "format_time",
    "key_statuses",
    "keys_ready",
    "observe",
    "reconcile_key",
]
