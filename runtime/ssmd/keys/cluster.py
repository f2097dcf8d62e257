"""A small async Kubernetes client for the CLI (``ssmd key``, ``ssmd env``): plain dicts over
kubernetes_asyncio's ApiClient, plus who is acting (for the audit Events).

The kubeconfig path is resolved here on every call, not at import time (kubernetes_asyncio's
own default is frozen when it is imported)."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import yaml
from kubernetes_asyncio import client, config

from ssmd.keys.status import format_time

KEY_API = "/apis/ssmd.io/v1alpha1"
MERGE_PATCH = "application/merge-patch+json"


class ClusterError(RuntimeError):
    """An API call failed. ``status`` is the HTTP status (0 when the server is unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


def kubeconfig_path() -> Path:
    first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    return Path(first) if first else Path.home() / ".kube" / "config"


@dataclass(frozen=True)
class KubeContext:
    name: str
    user: str
    namespace: str
    server: str

    @property
    def actor(self) -> str:
        """``cli:USER@HOST``: the kubeconfig context's user, on this machine."""
        return f"cli:{self.user}@{socket.gethostname()}"


def current_context(path: Path | None = None) -> KubeContext:
    p = path or kubeconfig_path()
    try:
        doc = yaml.safe_load(p.read_text()) or {}
    except OSError as exc:
        raise ClusterError(0, f"cannot read kubeconfig {p}: {exc.strerror}") from None
    except yaml.YAMLError:
        raise ClusterError(0, f"kubeconfig {p} is not valid YAML") from None
    name = doc.get("current-context") or ""
    ctx = next(
        (c.get("context") or {} for c in doc.get("contexts") or [] if c.get("name") == name), {}
    )
    cluster = next(
        (
            c.get("cluster") or {}
            for c in doc.get("clusters") or []
            if c.get("name") == ctx.get("cluster")
        ),
        {},
    )
    return KubeContext(
        name=name,
        user=str(ctx.get("user") or "unknown"),
        namespace=str(ctx.get("namespace") or "default"),
        server=str(cluster.get("server") or ""),
    )


def _path(
    plural: str, namespace: str | None, name: str | None = None, sub: str | None = None
) -> str:
    prefix = {
        "ssmdkeys": KEY_API,
        "ssmdenvironments": KEY_API,
        "ssmdfeeds": KEY_API,
        "secrets": "/api/v1",
        "events": "/api/v1",
        "services": "/api/v1",
        "sealedsecrets": "/apis/bitnami.com/v1alpha1",
    }[plural]
    path = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural}"
    if name:
        path += f"/{name}"
    if sub:
        path += f"/{sub}"
    return path


class Cluster:
    """``async with await Cluster.connect() as c: ...``"""

    def __init__(self, api: client.ApiClient, context: KubeContext) -> None:
        self.api = api
        self.context = context

    @classmethod
    async def connect(cls, kubeconfig: Path | None = None) -> Cluster:
        p = kubeconfig or kubeconfig_path()
        ctx = current_context(p)
        cfg = client.Configuration()
        try:
            await config.load_kube_config(config_file=str(p), client_configuration=cfg)
        except (config.ConfigException, OSError) as exc:
            raise ClusterError(0, f"cannot use kubeconfig {p}: {exc}") from None
        return cls(client.ApiClient(configuration=cfg), ctx)

    async def __aenter__(self) -> Cluster:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.api.close()

    async def raw(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> bytes:
        url = str(self.api.configuration.host).rstrip("/") + path
        if query:
            url += "?" + urlencode(query)
        headers = {"Accept": accept, "Content-Type": content_type}
        # async in kubernetes_asyncio 36: without the await no token would be sent
        await self.api.update_params_for_auth(headers, [], ["BearerToken"])
        try:
            resp = await self.api.rest_client.request(
                method, url, headers=headers, body=body, _preload_content=False
            )
            try:
                data: bytes = await resp.read()
            finally:
                resp.release()
        except OSError as exc:
            raise ClusterError(
                0, f"cannot reach the API server {self.context.server}: {exc}"
            ) from None
        if not 200 <= resp.status <= 299:
            try:
                message = json.loads(data).get("message", "")
            except (ValueError, AttributeError):
                message = data.decode(errors="replace")[:200]
            raise ClusterError(
                resp.status, f"{method} {path}: HTTP {resp.status} {message}".strip()
            )
        return data

    async def request(self, method: str, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
        data = await self.raw(method, path, body, **kw)
        return dict(json.loads(data)) if data else {}

    async def get(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return await self.request("GET", _path(plural, namespace, name))
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(
        self, plural: str, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        result = await self.request("GET", _path(plural, namespace), query=query)
        return list(result.get("items") or [])

    async def create(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", _path(plural, obj["metadata"].get("namespace")), obj)

    async def patch(
        self, plural: str, namespace: str, name: str, body: dict[str, Any], sub: str | None = None
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH", _path(plural, namespace, name, sub), body, content_type=MERGE_PATCH
        )

    async def delete(self, plural: str, namespace: str, name: str) -> bool:
        try:
            await self.request("DELETE", _path(plural, namespace, name))
        except ClusterError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def record_event(
        self,
        obj: dict[str, Any],
        *,
        reason: str,
        message: str,
        actor: str,
        now: datetime,
        event_type: str = "Normal",
    ) -> dict[str, Any]:
        """A core/v1 Event on ``obj``: the audit log of key changes (who, what, when)."""
        meta = obj["metadata"]
        ts = format_time(now)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{meta['name']}.",
                "namespace": meta["namespace"],
                "annotations": {"ssmd.io/actor": actor},
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", "ssmd.io/v1alpha1"),
                "kind": obj.get("kind", "Key"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                **({"uid": meta["uid"]} if meta.get("uid") else {}),
            },
            "reason": reason,
            "message": f"{actor}: {message}",
            "type": event_type,
            "source": {"component": "ssmd-cli"},
            "reportingComponent": "ssmd-cli",
            "reportingInstance": actor,
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
        }
        return await self.create("events", event)
