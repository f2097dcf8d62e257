"""Generate Kubernetes CustomResourceDefinitions from the pydantic models.

Kubernetes accepts only *structural* schemas (OpenAPI v3.0 subset): every node has a
``type``, no ``$ref``, nullable instead of ``anyOf [X, null]``, no ``additionalProperties``
next to ``properties``, boolean ``exclusiveMinimum``."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from ssmd.spec.common import GROUP, VERSION
from ssmd.spec.environment import EnvironmentSpec, EnvironmentStatus
from ssmd.spec.feed import FeedSpec, FeedStatus
from ssmd.spec.key import KeySpec, KeyStatus

_DROP = {"title", "$defs", "discriminator"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        target.update(extra)
        return _resolve(target, defs)
    return {k: _resolve(v, defs) for k, v in node.items() if k not in _DROP}


def _structural(node: Any, *, free_form_paths: set[str], path: str = "") -> Any:
    if isinstance(node, list):
        return [_structural(n, free_form_paths=free_form_paths, path=path) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    for combiner in ("anyOf", "oneOf"):
        if combiner in node:
            options = node.pop(combiner)
            non_null = [o for o in options if o.get("type") != "null"]
            nullable = len(non_null) != len(options)
            if len(non_null) == 1:
                merged = {**non_null[0], **node}
            elif all(o.get("type") in ("string", "integer") for o in non_null):
                merged = {**node, "x-kubernetes-int-or-string": True}
            else:
                merged = {**node, "type": "object", "x-kubernetes-preserve-unknown-fields": True}
            if nullable:
                merged["nullable"] = True
                if merged.get("default", 0) is None:
                    merged.pop("default")
            node = merged
    if node.get("default", 0) is None:
        node.pop("default")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if isinstance(node.get("exclusiveMinimum"), int | float) and not isinstance(
        node.get("exclusiveMinimum"), bool
    ):
        node["minimum"] = node.pop("exclusiveMinimum")
        node["exclusiveMinimum"] = True
    if isinstance(node.get("exclusiveMaximum"), int | float) and not isinstance(
        node.get("exclusiveMaximum"), bool
    ):
        node["maximum"] = node.pop("exclusiveMaximum")
        node["exclusiveMaximum"] = True
    if path in free_form_paths:
        return {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            **({"description": node["description"]} if "description" in node else {}),
        }
    if "properties" in node:
        node["type"] = "object"
        node.pop("additionalProperties", None)
        node["properties"] = {
            k: _structural(v, free_form_paths=free_form_paths, path=f"{path}.{k}")
            for k, v in node["properties"].items()
        }
    elif isinstance(node.get("additionalProperties"), dict):
        node["type"] = "object"
        ap = node["additionalProperties"]
        if not ap or ap == {}:
            node.pop("additionalProperties")
            node["x-kubernetes-preserve-unknown-fields"] = True
        else:
            node["additionalProperties"] = _structural(
                ap, free_form_paths=free_form_paths, path=f"{path}.*"
            )
    elif node.get("additionalProperties") is True or (
        node.get("type") == "object" and "additionalProperties" not in node
    ):
        node.pop("additionalProperties", None)
        node["type"] = "object"
        node["x-kubernetes-preserve-unknown-fields"] = True
    if "items" in node:
        node["items"] = _structural(
            node["items"], free_form_paths=free_form_paths, path=f"{path}[]"
        )
    if "type" not in node and not node.get("x-kubernetes-int-or-string"):
        node["type"] = "object"
        node["x-kubernetes-preserve-unknown-fields"] = True
    return node


def model_schema(model: type[BaseModel], free_form_paths: set[str] | None = None) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a model, as Kubernetes wants it."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    return dict(_structural(_resolve(raw, defs), free_form_paths=free_form_paths or set()))


def _status_schema(model: type[BaseModel], free_form: set[str]) -> dict[str, Any]:
    schema = model_schema(model, free_form)
    # Status is written by newer components too; unknown fields are kept, not pruned.
    schema["x-kubernetes-preserve-unknown-fields"] = True
    return schema


def _crd(
    kind: str,
    plural: str,
    short_names: list[str],
    spec_model: type[BaseModel],
    status_model: type[BaseModel],
    columns: list[dict[str, Any]],
    *,
    status_free_form: set[str] | None = None,
    description: str,
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": plural[:-1],
                "shortNames": short_names,
                "categories": ["ssmd"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": model_schema(spec_model),
                                "status": _status_schema(status_model, status_free_form or set()),
                            },
                        }
                    },
                }
            ],
        },
    }


def _col(name: str, path: str, typ: str = "string", priority: int = 0) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": typ, "jsonPath": path}
    if priority:
        col["priority"] = priority
    return col


_AGE = _col("Age", ".metadata.creationTimestamp", "date")


def environment_crd() -> dict[str, Any]:
    return _crd(
        "Environment",
        "ssmdenvironments",
        ["ssmdenv"],
        EnvironmentSpec,
        EnvironmentStatus,
        [
            _col("Feed", ".spec.feed.name"),
            _col("Phase", ".status.phase"),
            _col("Ready", '.status.conditions[?(@.type=="Ready")].status'),
            _col("Markets", ".status.markets", "integer"),
            _col("Msgs/s", ".status.msgsPerSec", "number"),
            _col("Lag", ".status.lag"),
            _col("Last Archive", ".status.lastArchiveDate"),
            _AGE,
            _col("Source", ".status.source", priority=1),
        ],
        status_free_form={".components"},
        description="An ssmd capture pipeline: feed, markets, transport, storage, components.",
    )


def feed_crd() -> dict[str, Any]:
    return _crd(
        "Feed",
        "ssmdfeeds",
        ["ssmdfeed"],
        FeedSpec,
        FeedStatus,
        [
            _col("Venue", ".spec.venue"),
            _col("Active", ".status.activeVersion"),
            _col("Markets", ".status.markets", "integer"),
            _col("Environments", ".status.environments", priority=1),
            _AGE,
        ],
        description="A market-data venue and its connection details, versioned by date.",
    )


def key_crd() -> dict[str, Any]:
    return _crd(
        "Key",
        "ssmdkeys",
        ["ssmdkey"],
        KeySpec,
        KeyStatus,
        [
            _col("Type", ".spec.type"),
            _col("Required", ".spec.required", "boolean"),
            _col("State", ".status.state"),
            _col("Last Rotated", ".status.lastRotated"),
            _col("Expires", ".status.expiresAt"),
            _AGE,
        ],
        description="A credential an Environment needs; values only ever sealed.",
    )


def all_crds() -> list[dict[str, Any]]:
    return [environment_crd(), feed_crd(), key_crd()]


def render_yaml() -> str:
    import yaml

    return "---\n".join(yaml.safe_dump(c, sort_keys=False, width=100) for c in all_crds())
