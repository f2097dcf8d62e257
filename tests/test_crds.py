"""CRDs generated from the models: checked in, structural, and they accept the examples."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml

from ssmd.spec.crd import all_crds, render_yaml
from ssmd.spec.loader import load_file

from .support import ROOT

CRD_FILE = ROOT / "crds" / "ssmd.io_crds.yaml"


def test_checked_in_crds_are_current() -> None:
    assert CRD_FILE.read_text() == render_yaml(), (
        "crds/ssmd.io_crds.yaml is stale: run `ssmd crds > crds/ssmd.io_crds.yaml`"
    )


def _walk(node: Any, path: str = "") -> list[str]:
    """Structural-schema violations (the rules the API server enforces)."""
    problems: list[str] = []
    if isinstance(node, dict):
        if "$ref" in node or "definitions" in node or "$defs" in node:
            problems.append(f"{path}: $ref/definitions")
        for bad in ("anyOf", "oneOf", "allOf", "const"):
            if bad in node:
                problems.append(f"{path}: {bad}")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: properties with additionalProperties")
        if isinstance(node.get("exclusiveMinimum"), int | float) and not isinstance(
            node.get("exclusiveMinimum"), bool
        ):
            problems.append(f"{path}: numeric exclusiveMinimum")
        is_schema = any(
            k in node for k in ("type", "properties", "items", "x-kubernetes-int-or-string")
        )
        if is_schema and "type" not in node and not node.get("x-kubernetes-int-or-string"):
            problems.append(f"{path}: no type")
        for k, v in node.items():
            if k == "properties":
                for pk, pv in v.items():
                    problems += _walk(pv, f"{path}.{pk}")
            elif k in ("items", "additionalProperties"):
                problems += _walk(v, f"{path}[{k}]")
    return problems


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["metadata"]["name"])
def test_schemas_are_structural(crd: dict[str, Any]) -> None:
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["shortNames"]
    assert {c["name"] for c in version["additionalPrinterColumns"]} >= {"Age"}


def _openapi_to_jsonschema(node: Any) -> Any:
    """nullable → type list, so jsonschema can check documents against the CRD schema."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kube")}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if out.get("exclusiveMinimum") is True:
        out["exclusiveMinimum"] = out.pop("minimum")
    return out


def test_environment_columns() -> None:
    env_crd = all_crds()[0]
    cols = [c["name"] for c in env_crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert cols[:8] == ["Feed", "Phase", "Ready", "Markets", "Msgs/s", "Lag", "Last Archive", "Age"]


@pytest.mark.parametrize("path", sorted((ROOT / "environments").glob("*.yaml")))
def test_examples_validate_against_generated_schema(path: Any) -> None:
    schema = _openapi_to_jsonschema(
        all_crds()[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    )
    doc = yaml.safe_load(path.read_text())
    jsonschema.validate(doc, schema)
    # ... and the full model-dumped form (all defaults filled) validates too: defaults are valid
    env = load_file(path)[0]
    dumped = json.loads(env.model_dump_json(by_alias=True, exclude_none=True))
    jsonschema.validate(dumped, schema)


def test_schema_rejects_what_the_model_rejects() -> None:
    schema = _openapi_to_jsonschema(
        all_crds()[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    )
    bad = {
        "apiVersion": "ssmd.io/v1alpha1",
        "kind": "Environment",
        "metadata": {"name": "x"},
        "spec": {"transport": {"stream": {"maxAge": "24hours"}}},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    assert len(list(yaml.safe_load_all(CRD_FILE.read_text()))) == 3
