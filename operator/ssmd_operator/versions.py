"""Spec versions: each change of an Environment's spec gets a number, a config hash and a
time, recorded in status and as an immutable ConfigMap holding that spec (last 20 kept).

``ssmd env history|show --version N|diff`` read them back."""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Any

import yaml

from ssmd_operator.children import ENV_LABEL, MANAGED_BY, Owner

KEEP = 20
VERSION_LABEL = "ssmd.io/version"
KIND_LABEL = "ssmd.io/kind"
HASH_ANNOTATION = "ssmd.io/config-hash"
TIME_ANNOTATION = "ssmd.io/recorded-at"
SPEC_KEY = "spec.yaml"


def config_hash(spec: dict[str, Any]) -> str:
    """Hash of the spec as written (canonical JSON), so a no-op re-apply is no new version."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def configmap_name(env: str, version: int) -> str:
    return f"{env}-v{version}"


def selector(env: str) -> str:
    return f"{ENV_LABEL}={env},{KIND_LABEL}=version"


def version_configmap(
    owner: Owner, version: int, spec: dict[str, Any], chash: str, at: str
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "immutable": True,  # a recorded version never changes
        "metadata": {
            "name": configmap_name(owner.name, version),
            "namespace": owner.namespace,
            "labels": {
                ENV_LABEL: owner.name,
                KIND_LABEL: "version",
                VERSION_LABEL: str(version),
                **MANAGED_BY,
            },
            "annotations": {HASH_ANNOTATION: chash, TIME_ANNOTATION: at},
            "ownerReferences": [owner.reference()],
        },
        "data": {SPEC_KEY: yaml.safe_dump(spec, sort_keys=True)},
    }


def record_of(cm: dict[str, Any]) -> dict[str, Any]:
    """The status record (version, configHash, time, configMap) of a version ConfigMap."""
    meta = cm.get("metadata", {})
    ann = meta.get("annotations") or {}
    return {
        "version": int((meta.get("labels") or {}).get(VERSION_LABEL, 0)),
        "configHash": ann.get(HASH_ANNOTATION, ""),
        "time": ann.get(TIME_ANNOTATION, ""),
        "configMap": meta.get("name", ""),
    }


def plan(existing: list[dict[str, Any]], chash: str) -> tuple[int | None, list[str]]:
    """Given the version ConfigMaps there are and the current hash: the version number to
    record (None when the latest already has this hash) and the ConfigMaps to prune."""
    records = sorted((record_of(cm) for cm in existing), key=lambda r: r["version"])
    latest = records[-1] if records else None
    new = (
        None
        if latest and latest["configHash"] == chash
        else (latest["version"] + 1 if latest else 1)
    )
    top = new or (latest["version"] if latest else 0)
    prune = [r["configMap"] for r in records if r["version"] <= top - KEEP]
    return new, prune


def spec_text(cm: dict[str, Any]) -> str:
    return str((cm.get("data") or {}).get(SPEC_KEY, ""))


def diff(a: str, b: str, label_a: str, label_b: str) -> str:
    return "".join(
        difflib.unified_diff(
            a.splitlines(keepends=True), b.splitlines(keepends=True), label_a, label_b
        )
    )
