"""A small JSON client for the few Kubernetes resources the operator touches.

It goes through kubernetes_asyncio's ApiClient (so in-cluster auth and kubeconfig work the
same way as for kopf) but keeps bodies as plain dicts: the desired objects are built as
dicts by pure functions, and comparing dicts is simpler than comparing generated models."""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from kubernetes_asyncio import client, config

# kind -> (API prefix, plural)
RESOURCES: dict[str, tuple[str, str]] = {
    "ConfigMap": ("api/v1", "configmaps"),
    "Service": ("api/v1", "services"),
    "PersistentVolumeClaim": ("api/v1", "persistentvolumeclaims"),
    "Secret": ("api/v1", "secrets"),
    "Event": ("api/v1", "events"),
    "Deployment": ("apis/apps/v1", "deployments"),
    "Environment": ("apis/ssmd.io/v1alpha1", "ssmdenvironments"),
    "Feed": ("apis/ssmd.io/v1alpha1", "ssmdfeeds"),
    "Key": ("apis/ssmd.io/v1alpha1", "ssmdkeys"),
}

MERGE_PATCH = "application/merge-patch+json"


class KubeError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        self.status = status
        self.body = body
        try:
            message = json.loads(body).get("message", body)
        except (ValueError, AttributeError):
            message = body
        super().__init__(f"HTTP {status}: {str(message)[:300]}")


async def load_config() -> client.Configuration:
    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)  # in a pod
    except config.ConfigException:
        # kubernetes_asyncio resolves $KUBECONFIG at import time; tests patch that default.
        await config.load_kube_config(client_configuration=cfg)
    return cfg


def _path(kind: str, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
    prefix, plural = RESOURCES[kind]
    path = f"/{prefix}"
    if namespace:
        path += f"/namespaces/{namespace}"
    path += f"/{plural}"
    if name:
        path += f"/{name}"
    if sub:
        path += f"/{sub}"
    return path


@dataclass
class Kube:
    """``async with Kube.connect() as kube: ...``"""

    api: client.ApiClient

    @classmethod
    async def connect(cls) -> Kube:
        return cls(client.ApiClient(configuration=await load_config()))

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.api.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        url = str(self.api.configuration.host).rstrip("/") + path
        if query:
            url += "?" + urlencode(query)
        headers = {"Accept": "application/json", "Content-Type": content_type}
        queries: list[Any] = []
        await self.api.update_params_for_auth(headers, queries, ["BearerToken"])
        resp = await self.api.rest_client.request(
            method, url, headers=headers, body=body, _preload_content=False
        )
        try:
            text = (await resp.read()).decode()
        finally:
            resp.release()
        if not 200 <= resp.status <= 299:
            raise KubeError(resp.status, text)
        return dict(json.loads(text)) if text else {}

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.request("GET", _path(kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(
        self, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        result = await self.request("GET", _path(kind, namespace), query=query)
        return list(result.get("items") or [])

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return await self.request("POST", _path(obj["kind"], meta.get("namespace")), obj)

    async def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return await self.request(
            "PUT", _path(obj["kind"], meta.get("namespace"), meta["name"]), obj
        )

    async def patch(
        self, kind: str, namespace: str, name: str, body: dict[str, Any], sub: str | None = None
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH", _path(kind, namespace, name, sub), body, content_type=MERGE_PATCH
        )

    async def delete(self, kind: str, namespace: str, name: str) -> bool:
        try:
            await self.request("DELETE", _path(kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True
