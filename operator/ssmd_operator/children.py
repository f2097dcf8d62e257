"""Desired child objects of an Environment: pure functions from the spec to manifests.

Every child carries an owner reference to the Environment (so Kubernetes garbage-collects
it) and a ``ssmd.io/spec-hash`` annotation: the reconciler replaces a child only when the
hash of what it wants differs from what is there, which keeps server-side defaults alone."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from ssmd.spec import Environment
from ssmd.spec.environment import Resources
from ssmd.spec.types import parse_key_ref
from ssmd_operator.images import image_ref

Component = Literal["secmaster", "archiver", "gateway", "connector"]
# Start order; teardown runs the other way round, with the connector first.
COMPONENTS: tuple[Component, ...] = ("secmaster", "archiver", "gateway", "connector")

CONFIG_DIR = "/etc/ssmd"
CONFIG_FILE = f"{CONFIG_DIR}/environment.yaml"
KEYS_DIR = "/var/run/ssmd/keys"
ARCHIVE_DIR = "/var/lib/ssmd/archive"
SECMASTER_METRICS_PORT = 9103  # the spec has no secmaster port yet; the runtime uses this one
SPEC_HASH = "ssmd.io/spec-hash"
ENV_LABEL = "ssmd.io/environment"
MANAGED_BY = {"app.kubernetes.io/managed-by": "ssmd-operator"}


@dataclass(frozen=True)
class Owner:
    """What an owner reference needs; taken from the Environment's metadata."""

    name: str
    namespace: str
    uid: str
    api_version: str = "ssmd.io/v1alpha1"
    kind: str = "Environment"

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def labels(env: str, component: str | None = None) -> dict[str, str]:
    out = {"app.kubernetes.io/name": "ssmd", "app.kubernetes.io/instance": env, ENV_LABEL: env}
    if component:
        out["app.kubernetes.io/component"] = component
    return {**out, **MANAGED_BY}


def _meta(owner: Owner, name: str, component: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner.name, component),
        "ownerReferences": [owner.reference()],
    }


def _stamp(obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"].setdefault("annotations", {})[SPEC_HASH] = digest(obj)
    return obj


def configmap_name(env: str) -> str:
    return f"{env}-environment"


def deployment_name(env: str, component: str) -> str:
    return f"{env}-{component}"


def secret_name(env: str, key: str) -> str:
    """Issue 7 (Key resources) will create these; until then they are made by hand."""
    return f"{env}-{key}"


def enabled_components(env: Environment) -> list[Component]:
    s = env.spec
    on = {
        "secmaster": s.secmaster.enabled,
        "archiver": s.archiver.enabled,
        "gateway": s.gateway.enabled and s.gateway.replicas > 0,
        "connector": True,
    }
    return [c for c in COMPONENTS if on[c]]


def running_replicas(env: Environment, component: Component) -> int:
    return env.spec.gateway.replicas if component == "gateway" else 1


def rendered_environment(env: Environment, namespace: str) -> dict[str, Any]:
    """The Environment as the runtime in a pod must see it: paths and bind address of the pod."""
    spec = env.spec.model_dump(by_alias=True, mode="json", exclude_none=True)
    if env.spec.storage.local is not None:
        spec["storage"]["local"]["path"] = ARCHIVE_DIR  # where the PVC is mounted
    spec["gateway"]["host"] = "0.0.0.0"  # reachable through the Service
    return {
        "apiVersion": env.api_version,
        "kind": "Environment",
        "metadata": {"name": env.name, "namespace": namespace},
        "spec": spec,
    }


def environment_configmap(env: Environment, owner: Owner) -> dict[str, Any]:
    text = yaml.safe_dump(rendered_environment(env, owner.namespace), sort_keys=False)
    return _stamp(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(owner, configmap_name(env.name)),
            "data": {"environment.yaml": text},
        }
    )


def _keys_of(env: Environment, component: Component) -> list[str]:
    """Keys (by name) a component needs, from the ``$key:`` references of the spec."""
    refs = env.spec.key_references()
    wanted = {
        "connector": ("spec.feed.credentials", "spec.transport.credentials"),
        "secmaster": ("spec.feed.credentials", "spec.transport.credentials"),
        "archiver": ("spec.storage.s3.credentials", "spec.transport.credentials"),
        "gateway": ("spec.gateway.auth", "spec.transport.credentials"),
    }[component]
    names = [parse_key_ref(refs[p])[0] for p in wanted if p in refs]
    return list(dict.fromkeys(names))


def _ports(env: Environment, component: Component) -> tuple[int, str, str]:
    """(port, liveness path, readiness path) of a component's health endpoints."""
    s = env.spec
    if component == "gateway":
        return s.gateway.port, "/v1/health", "/v1/health"
    port = {
        "connector": s.connector.metrics_port,
        "archiver": s.archiver.metrics_port,
        "secmaster": SECMASTER_METRICS_PORT,
    }[component]
    return port, "/healthz", "/readyz"


def _resources(env: Environment, component: Component) -> dict[str, Any]:
    r: Resources = getattr(env.spec, component).resources
    out: dict[str, Any] = {}
    if r.requests:
        out["requests"] = dict(r.requests)
    if r.limits:
        out["limits"] = dict(r.limits)
    return out


def deployment(
    env: Environment, owner: Owner, component: Component, replicas: int
) -> dict[str, Any]:
    s = env.spec
    port, live, ready = _ports(env, component)
    env_vars: list[dict[str, Any]] = [
        {"name": "SSMD_ENVIRONMENT", "value": CONFIG_FILE},
        {"name": "SSMD_KEYS_DIR", "value": KEYS_DIR},
        {"name": "SSMD_COMPONENT", "value": component},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "environment", "configMap": {"name": configmap_name(env.name)}}
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "environment", "mountPath": CONFIG_DIR, "readOnly": True}
    ]
    for key in _keys_of(env, component):
        req = s.keys[key]
        secret = secret_name(env.name, key)
        # Every field as a file (KEYS_DIR/key/field), plus the env vars the key declares.
        volumes.append({"name": f"key-{key}", "secret": {"secretName": secret}})
        mounts.append({"name": f"key-{key}", "mountPath": f"{KEYS_DIR}/{key}", "readOnly": True})
        for fld, var in sorted(req.env.items()):
            env_vars.append(
                {
                    "name": var,
                    "valueFrom": {
                        "secretKeyRef": {"name": secret, "key": fld, "optional": not req.required}
                    },
                }
            )
        for fld, var in sorted(req.file_env.items()):
            env_vars.append({"name": var, "value": f"{KEYS_DIR}/{key}/{fld}"})
    if component == "archiver" and s.storage.local is not None:
        volumes.append(
            {"name": "archive", "persistentVolumeClaim": {"claimName": pvc_name(env.name)}}
        )
        mounts.append({"name": "archive", "mountPath": ARCHIVE_DIR})
    probe = {"httpGet": {"path": live, "port": port}, "periodSeconds": 10, "failureThreshold": 3}
    container: dict[str, Any] = {
        "name": component,
        "image": image_ref(s.image.repository, s.image.tag),
        "imagePullPolicy": s.image.pull_policy,
        "args": [component, "--env", CONFIG_FILE],
        "ports": [{"name": "http" if component == "gateway" else "metrics", "containerPort": port}],
        "env": env_vars,
        "volumeMounts": mounts,
        "livenessProbe": {**probe, "initialDelaySeconds": 10},
        "readinessProbe": {**probe, "httpGet": {"path": ready, "port": port}, "periodSeconds": 5},
        "resources": _resources(env, component),
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod_labels = labels(env.name, component)
    return _stamp(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(owner, deployment_name(env.name, component), component),
            "spec": {
                "replicas": replicas,
                # Two archivers on one PVC (or one consumer) would race: replace, not roll.
                "strategy": {"type": "Recreate" if component == "archiver" else "RollingUpdate"},
                "selector": {
                    "matchLabels": {ENV_LABEL: env.name, "app.kubernetes.io/component": component}
                },
                "template": {
                    "metadata": {
                        "labels": pod_labels,
                        "annotations": {
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": str(port),
                            "prometheus.io/path": "/metrics",
                        },
                    },
                    "spec": {
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65532,
                            "fsGroup": 65532,
                        },
                        "containers": [container],
                        "volumes": volumes,
                    },
                },
            },
        }
    )


def gateway_service(env: Environment, owner: Owner) -> dict[str, Any]:
    port = env.spec.gateway.port
    return _stamp(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(owner, deployment_name(env.name, "gateway"), "gateway"),
            "spec": {
                "selector": {ENV_LABEL: env.name, "app.kubernetes.io/component": "gateway"},
                "ports": [{"name": "http", "port": port, "targetPort": port}],
            },
        }
    )


def pvc_name(env: str) -> str:
    return f"{env}-archive"


def archive_pvc(env: Environment, owner: Owner) -> dict[str, Any] | None:
    local = env.spec.storage.local
    if local is None:
        return None
    size = local.size if isinstance(local.size, str) else str(local.size)
    return _stamp(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta(owner, pvc_name(env.name), "archiver"),
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}},
            },
        }
    )


def desired_children(
    env: Environment, owner: Owner, replicas: dict[Component, int]
) -> list[dict[str, Any]]:
    """Every child of the Environment. ``replicas`` says how many of each component run now
    (the schedule and suspend decide it); components that are disabled get no Deployment."""
    out = [environment_configmap(env, owner)]
    pvc = archive_pvc(env, owner)
    if pvc is not None:
        out.append(pvc)
    for component in enabled_components(env):
        out.append(deployment(env, owner, component, replicas.get(component, 0)))
    if "gateway" in enabled_components(env):
        out.append(gateway_service(env, owner))
    return out
