"""What ``ssmd key`` does, apart from parsing arguments: build Key manifests with sealed
values, and keep them in a directory (GitOps, offline) or in the cluster (with an audit Event).

A Key is named ``{env}-{key}``, like the SealedSecret and the Secret made from it."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import yaml

from ssmd.keys.seal import SealScope, seal_values
from ssmd.keys.status import (
    ENV_LABEL,
    KEY_LABEL,
    LAST_ROTATED_ANNOTATION,
    KeyEvaluation,
    evaluate_key,
    format_time,
    parse_time,
    resource_name,
)
from ssmd.spec.environment import Environment, KeyRequirement
from ssmd.spec.key import Key, KeyStatus
from ssmd.spec.loader import SpecError, validate_document

CHANGED_BY_ANNOTATION = "ssmd.io/changed-by"


class KeyOpError(ValueError):
    """A user-facing problem with a key operation (never contains a value)."""


def local_actor() -> str:
    """The actor when no kubeconfig context is available."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def requirement(env: Environment, key: str) -> KeyRequirement:
    try:
        return env.spec.keys[key]
    except KeyError:
        declared = ", ".join(sorted(env.spec.keys)) or "none"
        raise KeyOpError(
            f"environment {env.name!r} does not declare key {key!r} in spec.keys (declared: {declared})"
        ) from None


def key_manifest(
    env: Environment,
    key: str,
    *,
    namespace: str,
    scope: SealScope,
    encrypted_data: Mapping[str, str],
    last_rotated: datetime | None,
    actor: str | None,
) -> dict[str, Any]:
    req = requirement(env, key)
    annotations: dict[str, str] = {}
    if last_rotated is not None:
        annotations[LAST_ROTATED_ANNOTATION] = format_time(last_rotated)
    if actor:
        annotations[CHANGED_BY_ANNOTATION] = actor
    spec: dict[str, Any] = {
        "type": req.type,
        "description": req.description,
        "required": req.required,
        "fields": list(req.fields),
    }
    if req.rotation_days is not None:
        spec["rotationDays"] = req.rotation_days
    spec["scope"] = scope
    spec["encryptedData"] = dict(sorted(encrypted_data.items()))
    doc: dict[str, Any] = {
        "apiVersion": "ssmd.io/v1alpha1",
        "kind": "Key",
        "metadata": {
            "name": resource_name(env.name, key),
            "namespace": namespace,
            "labels": {ENV_LABEL: env.name, KEY_LABEL: key},
            "annotations": annotations,
        },
        "spec": spec,
    }
    validate_document(doc, f"Key {resource_name(env.name, key)}")  # never write what k8s rejects
    return doc


def seal_key(
    env: Environment,
    key: str,
    values: Mapping[str, bytes],
    *,
    public_key: Any,
    namespace: str,
    scope: SealScope,
    existing: Mapping[str, Any] | None,
    now: datetime,
    actor: str | None,
    require_all: bool = False,
) -> dict[str, Any]:
    """The Key manifest after sealing ``values`` into it (fields not given are kept)."""
    req = requirement(env, key)
    unknown = sorted(set(values) - set(req.fields))
    if unknown:
        raise KeyOpError(
            f"key {key!r} has no field(s) {', '.join(unknown)} (fields: {', '.join(req.fields)})"
        )
    empty = sorted(f for f, v in values.items() if not v)
    if empty:
        raise KeyOpError(f"field(s) {', '.join(empty)} of key {key!r} are empty")
    if not values:
        raise KeyOpError(
            f"no values given for key {key!r}: use --field NAME=VALUE, --from-file NAME=PATH "
            "or --from-env VAR"
        )
    old_spec = dict((existing or {}).get("spec") or {})
    old_ns = ((existing or {}).get("metadata") or {}).get("namespace")
    kept: dict[str, str] = dict(old_spec.get("encryptedData") or {})
    if existing is not None and (old_spec.get("scope", "strict") != scope or old_ns != namespace):
        kept = {}  # sealed for another label: those values would not decrypt any more
    missing = [f for f in req.fields if f not in values and f not in kept]
    if require_all and any(f not in values for f in req.fields):
        need = [f for f in req.fields if f not in values]
        raise KeyOpError(
            f"rotating key {key!r} needs new values for every field; missing {', '.join(need)}"
        )
    if existing is not None and not kept and old_spec.get("encryptedData") and missing:
        raise KeyOpError(
            f"key {key!r} was sealed for another scope or namespace; give every field "
            f"(missing {', '.join(missing)})"
        )
    sealed = seal_values(
        public_key, values, namespace=namespace, name=resource_name(env.name, key), scope=scope
    )
    return key_manifest(
        env,
        key,
        namespace=namespace,
        scope=scope,
        encrypted_data={**kept, **sealed},
        last_rotated=now,
        actor=actor,
    )


def evaluate_manifest(
    req: KeyRequirement, manifest: Mapping[str, Any] | None, now: datetime
) -> KeyEvaluation:
    """Key state from a manifest alone (offline: sealed fields count as present)."""
    if manifest is None:
        return evaluate_key(req.fields, set(), None, req.rotation_days, now)
    annotations = (manifest.get("metadata") or {}).get("annotations") or {}
    present = set(((manifest.get("spec") or {}).get("encryptedData") or {}).keys())
    return evaluate_key(
        req.fields,
        present,
        parse_time(annotations.get(LAST_ROTATED_ANNOTATION)),
        req.rotation_days,
        now,
    )


@dataclass(frozen=True)
class KeyView:
    """What ``list``/``show``/``verify`` print about one key (metadata only)."""

    name: str
    requirement: KeyRequirement
    resource: str
    exists: bool
    state: str
    fields_present: list[str]
    last_rotated: str | None
    expires_at: str | None
    secret_name: str | None
    scope: str | None
    changed_by: str | None
    from_status: bool


def key_view(
    env: Environment, key: str, manifest: Mapping[str, Any] | None, now: datetime
) -> KeyView:
    """Prefer the operator's status (what the Secret really holds); without one, judge from
    the sealed fields in the manifest."""
    req = requirement(env, key)
    ev = evaluate_manifest(req, manifest, now)
    meta = (manifest or {}).get("metadata") or {}
    spec = (manifest or {}).get("spec") or {}
    raw_status = (manifest or {}).get("status") or {}
    status = KeyStatus.model_validate(raw_status) if raw_status.get("state") else None
    if status is not None:
        return KeyView(
            key, req, resource_name(env.name, key), True, status.state, list(status.fields_present),
            status.last_rotated, status.expires_at, status.secret_name, spec.get("scope"),
            (meta.get("annotations") or {}).get(CHANGED_BY_ANNOTATION), True,
        )  # fmt: skip
    return KeyView(
        key, req, resource_name(env.name, key), manifest is not None, ev.state, ev.fields_present,
        format_time(ev.last_rotated) if ev.last_rotated else None,
        format_time(ev.expires_at) if ev.expires_at else None,
        None, spec.get("scope"), (meta.get("annotations") or {}).get(CHANGED_BY_ANNOTATION), False,
    )  # fmt: skip


def export_documents(env: Environment, namespace: str) -> list[dict[str, Any]]:
    """Key manifests without values, plus where each key is referenced (for GitOps review)."""
    refs: dict[str, list[str]] = {}
    for path, ref in env.spec.key_references().items():
        name = ref.removeprefix("$key:").split(".", 1)[0]
        refs.setdefault(name, []).append(f"{path}={ref}")
    docs = []
    for key in sorted(env.spec.keys):
        doc = key_manifest(
            env,
            key,
            namespace=namespace,
            scope="strict",
            encrypted_data={},
            last_rotated=None,
            actor=None,
        )
        del doc["spec"]["encryptedData"]
        del doc["spec"]["scope"]
        if refs.get(key):
            doc["metadata"]["annotations"]["ssmd.io/referenced-by"] = ", ".join(refs[key])
        if not doc["metadata"]["annotations"]:
            del doc["metadata"]["annotations"]
        docs.append(doc)
    return docs


class KeyStore(Protocol):
    where: str

    async def get(self, env: str, key: str, namespace: str) -> dict[str, Any] | None: ...

    async def put(
        self, manifest: dict[str, Any], *, reason: str, message: str, actor: str, now: datetime
    ) -> str: ...

    async def remove(
        self, env: str, key: str, namespace: str, *, actor: str, now: datetime
    ) -> bool: ...


class DirStore:
    """Key manifests as ``DIR/{env}-{key}.yaml`` (sealed: safe to commit)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.where = str(directory)

    def path(self, env: str, key: str) -> Path:
        return self.directory / f"{resource_name(env, key)}.yaml"

    async def get(self, env: str, key: str, namespace: str) -> dict[str, Any] | None:
        p = self.path(env, key)
        if not p.is_file():
            return None
        try:
            doc = yaml.safe_load(p.read_text())
            validate_document(doc, str(p))
        except (yaml.YAMLError, SpecError) as exc:
            raise KeyOpError(
                f"{p}: not a valid Key manifest ({str(exc).splitlines()[0]})"
            ) from None
        assert isinstance(doc, dict)
        return doc

    async def put(
        self, manifest: dict[str, Any], *, reason: str, message: str, actor: str, now: datetime
    ) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        labels = manifest["metadata"]["labels"]
        p = self.path(labels[ENV_LABEL], labels[KEY_LABEL])
        header = (
            f"# {reason} by {actor} at {format_time(now)}: {message}\n"
            "# Values are sealed for the sealed-secrets controller: safe to commit.\n"
        )
        tmp = p.with_suffix(".yaml.tmp")
        tmp.write_text(header + yaml.safe_dump(manifest, sort_keys=False))
        tmp.replace(p)
        return str(p)

    async def remove(
        self, env: str, key: str, namespace: str, *, actor: str, now: datetime
    ) -> bool:
        p = self.path(env, key)
        if not p.exists():
            return False
        p.unlink()
        return True


class ClusterStore:
    """Key resources in the cluster; every change is recorded as an Event on the Key."""

    def __init__(self, cluster: Any) -> None:
        from ssmd.keys.cluster import Cluster

        assert isinstance(cluster, Cluster)
        self.cluster = cluster
        self.where = f"cluster {cluster.context.server or cluster.context.name}"

    async def get(self, env: str, key: str, namespace: str) -> dict[str, Any] | None:
        return await self.cluster.get("ssmdkeys", namespace, resource_name(env, key))

    async def put(
        self, manifest: dict[str, Any], *, reason: str, message: str, actor: str, now: datetime
    ) -> str:
        meta = manifest["metadata"]
        current = await self.cluster.get("ssmdkeys", meta["namespace"], meta["name"])
        if current is None:
            obj = await self.cluster.create("ssmdkeys", manifest)
        else:
            # Merge patch: replaces encryptedData as a whole (dropped fields go with null).
            old = set((current.get("spec") or {}).get("encryptedData") or {})
            patch_spec = dict(manifest["spec"])
            patch_spec["encryptedData"] = {
                **{f: None for f in old - set(manifest["spec"]["encryptedData"])},
                **manifest["spec"]["encryptedData"],
            }
            obj = await self.cluster.patch(
                "ssmdkeys",
                meta["namespace"],
                meta["name"],
                {
                    "metadata": {"labels": meta["labels"], "annotations": meta["annotations"]},
                    "spec": patch_spec,
                },
            )
        await self.cluster.record_event(obj, reason=reason, message=message, actor=actor, now=now)
        return f"{meta['namespace']}/{meta['name']}"

    async def remove(
        self, env: str, key: str, namespace: str, *, actor: str, now: datetime
    ) -> bool:
        name = resource_name(env, key)
        current = await self.cluster.get("ssmdkeys", namespace, name)
        if current is None:
            return False
        await self.cluster.record_event(
            current, reason="KeyDeleted", message=f"deleted key {key!r}", actor=actor, now=now
        )
        return await self.cluster.delete("ssmdkeys", namespace, name)


def key_from_manifest(doc: Mapping[str, Any]) -> Key:
    return Key.model_validate(doc)
