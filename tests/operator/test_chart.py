"""The Helm chart renders with real Helm (helm-python-sdk) and its objects apply to the
emulator with kubectl; its CRDs are the generated ones; it defaults to the project images."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import helm_python
import kmock
import pytest
import yaml

from ssmd.spec.crd import render_yaml
from tests import k8semu
from tests.operator.support import ROOT, kubectl, live, write_yaml

CHART = ROOT / "charts" / "ssmd-operator"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    out = helm_python.Chart.load(str(CHART)).render(values, name="ssmd", namespace="ssmd-system")
    return [d for path, text in sorted(out.items()) if path.endswith(".yaml")
            for d in yaml.safe_load_all(text) if d]  # fmt: skip


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_chart_crds_are_the_generated_ones_and_versions_match() -> None:
    assert (CHART / "crds" / "ssmd.io_crds.yaml").read_text() == render_yaml()
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == VERSION == chart["version"]
    report = helm_python.lint(str(CHART), strict=True)
    assert report["errors"] == [] and all(m["severity"] < 2 for m in report["messages"])


def test_default_values() -> None:
    docs = render({})
    (deploy,) = by_kind(docs, "Deployment")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/ssmd/ssmd-operator:{VERSION}"
    assert container["args"] == ["operator", "--liveness=http://0.0.0.0:8080/healthz"]
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    (role,) = by_kind(docs, "ClusterRole")  # cluster-wide: one ClusterRole with everything
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert {
        "ssmdenvironments",
        "deployments",
        "configmaps",
        "customresourcedefinitions",
    } <= resources
    assert not by_kind(docs, "Role") and not by_kind(docs, "ClusterKopfPeering")
    verbs = {v for rule in role["rules"] if "secrets" in rule["resources"] for v in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}  # never writes a Secret


def test_custom_values() -> None:
    values = {"replicaCount": 2, "watchNamespaces": ["markets", "research"],
              "image": {"repository": "registry.local/ssmd-operator", "tag": "dev"},
              "resources": {"limits": {"memory": "1Gi"}}, "reconcileInterval": 10}  # fmt: skip
    docs = render(values)
    (deploy,) = by_kind(docs, "Deployment")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.local/ssmd-operator:dev"
    assert container["args"][1:4] == [
        "--namespace=markets", "--namespace=research", "--peering=ssmd-operator"
    ]  # fmt: skip
    assert container["resources"]["limits"] == {"memory": "1Gi"}  # merged with the defaults
    assert {"name": "SSMD_OPERATOR_INTERVAL", "value": "10"} in container["env"]
    assert [r["metadata"]["namespace"] for r in by_kind(docs, "Role")] == ["markets", "research"]
    assert len(by_kind(docs, "RoleBinding")) == 2
    assert [p["metadata"]["namespace"] for p in by_kind(docs, "KopfPeering")] == [
        "markets",
        "research",
    ]
    (cluster,) = by_kind(docs, "ClusterRole")  # only what has to be cluster-wide
    assert {r for rule in cluster["rules"] for r in rule["resources"]} == {
        "customresourcedefinitions", "namespaces"
    }  # fmt: skip


@pytest.mark.parametrize("values", [{}, {"replicaCount": 3, "watchNamespaces": ["default"]}])
async def test_rendered_objects_apply_to_the_emulator(
    k8s: k8semu.Emulator, tmp_path: Path, values: dict[str, Any]
) -> None:
    crds = [str(CHART / "crds" / "kopf-peering.yaml")]
    await kubectl("apply", "--validate=false", "-f", crds[0])
    await kubectl(
        "wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev", "--timeout=10s"
    )
    docs = render(values)
    for d in docs:  # the release namespace exists in a real install (helm --create-namespace)
        if d["metadata"].get("namespace") == "ssmd-system":
            d["metadata"]["namespace"] = "default"
    manifest = write_yaml(tmp_path / "rendered.yaml", *docs)
    out = await kubectl("apply", "--validate=false", "-f", str(manifest))
    assert out.count("created") == len(docs), out
    assert live(k8s, kmock.resource("apps/v1/deployments"), "ssmd") is not None
    sa = kmock.resource("v1/serviceaccounts")
    assert live(k8s, sa, "ssmd") is not None
    names = (await kubectl("get", "clusterroles", "-o", "name")).split()
    assert "clusterrole.rbac.authorization.k8s.io/ssmd-cluster" in names
