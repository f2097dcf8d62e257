"""``ssmd operator``: run the Kubernetes operator (the operator image's entrypoint)."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--namespace",
    "-n",
    "namespaces",
    multiple=True,
    help="Watch only these namespaces (repeatable; globs allowed). Default: all.",
)
@click.option(
    "--peering",
    default=None,
    help="kopf peering name, for more than one replica (needs the KopfPeering CRDs).",
)
@click.option(
    "--liveness",
    default="http://0.0.0.0:8080/healthz",
    show_default=True,
    help="Liveness endpoint URL; empty to disable.",
)
def operator(namespaces: tuple[str, ...], peering: str | None, liveness: str) -> None:
    """Run the Kubernetes operator: reconcile Environment and Feed resources."""
    from ssmd_operator.main import run

    run(list(namespaces), peering=peering, liveness=liveness or None)
