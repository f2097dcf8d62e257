"""Shared plumbing for commands that read the cluster (env show/history/diff, ops, feed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ssmd.cli.errors import UserError

if TYPE_CHECKING:
    from ssmd_operator.kube import Kube

T = TypeVar("T")

namespace_option = click.option(
    "--namespace", "-n", default="default", show_default=True, help="Kubernetes namespace."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def with_kube(fn: Callable[[Kube], Awaitable[T]]) -> T:
    """Run ``fn(kube)`` with a client from the kubeconfig (or in-cluster config); turn API
    and connection errors into one-line messages."""
    from ssmd_operator.kube import Kube, KubeError

    async def main() -> T:
        try:
            kube = await Kube.connect()
        except Exception as exc:  # kubernetes_asyncio raises several config error types
            raise UserError(f"cannot load the Kubernetes configuration: {exc}") from None
        async with kube:
            try:
                return await fn(kube)
            except KubeError as exc:
                raise UserError(f"Kubernetes API: {exc}") from None
            except OSError as exc:
                raise UserError(f"cannot reach the Kubernetes API: {exc}") from None

    return asyncio.run(main())


async def get_or_fail(kube: Kube, kind: str, namespace: str, name: str) -> dict[str, Any]:
    obj = await kube.get(kind, namespace, name)
    if obj is None:
        raise UserError(f"no {kind} {name!r} in namespace {namespace!r}")
    return obj


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), {})


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=False)).rstrip()
        for line in lines
    )
