"""``ssmd ops``: stop, start and inspect an Environment's pipeline on Kubernetes.

Stop and start set ``spec.suspend``; the operator tears the pipeline down in order
(connector, archiver once its files are closed, gateway) or starts it (secmaster first)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import click

from ssmd.cli.cluster import json_option, namespace_option
from ssmd.cli.errors import UserError

if TYPE_CHECKING:
    from ssmd_operator.kube import Kube


@click.group()
def ops() -> None:
    """Start, stop and show the phase of an environment's pipeline."""


def _print_status(name: str, body: dict[str, Any], as_json: bool) -> None:
    from ssmd.cli.cluster import condition, table

    st = body.get("status") or {}
    pipe = st.get("pipeline") or {}
    if as_json:
        click.echo(json.dumps({
            "name": name,
            "suspend": bool((body.get("spec") or {}).get("suspend")),
            "phase": st.get("phase"),
            "conditions": st.get("conditions") or [],
            "steps": pipe.get("steps") or [],
        }, indent=2))  # fmt: skip
        return
    ready = condition(st, "Ready")
    click.echo(f"{name}: phase {st.get('phase', 'Pending')}, ready {ready.get('status', 'Unknown')}"
               f"{' (suspended)' if (body.get('spec') or {}).get('suspend') else ''}")  # fmt: skip
    steps = pipe.get("steps") or []
    if steps:
        click.echo(table([[s["time"], s["step"], s.get("message", "")] for s in steps],
                         ["TIME", "STEP", "MESSAGE"]))  # fmt: skip


async def _set_suspend(
    kube: Kube, name: str, namespace: str, suspend: bool, wait: float | None
) -> dict[str, Any]:
    from ssmd.cli.cluster import get_or_fail

    await get_or_fail(kube, "Environment", namespace, name)
    body = await kube.patch("Environment", namespace, name, {"spec": {"suspend": suspend}})
    if not wait:
        return body
    want = {"Suspended"} if suspend else {"Running"}
    deadline = time.monotonic() + wait
    seen = 0
    while True:
        body = await get_or_fail(kube, "Environment", namespace, name)
        st = body.get("status") or {}
        steps = (st.get("pipeline") or {}).get("steps") or []
        for s in steps[seen:]:
            click.echo(f"  {s['time']}  {s['step']}: {s.get('message', '')}")
        seen = len(steps)
        fresh = st.get("observedGeneration") == body["metadata"].get("generation")
        if fresh and st.get("phase") in want:
            return body
        if time.monotonic() > deadline:
            raise UserError(
                f"{name} is {st.get('phase', 'Pending')} after {wait:.0f}s (wanted {', '.join(want)})"
            )
        await asyncio.sleep(0.5)


@ops.command()
@click.argument("name")
@click.option("--wait", type=float, default=None, help="Wait up to this many seconds.")
@namespace_option
def stop(name: str, wait: float | None, namespace: str) -> None:
    """Tear the pipeline of Environment NAME down and keep it down (spec.suspend=true)."""
    from ssmd.cli.cluster import with_kube

    body = with_kube(lambda kube: _set_suspend(kube, name, namespace, True, wait))
    _print_status(name, body, False)


@ops.command()
@click.argument("name")
@click.option("--wait", type=float, default=None, help="Wait up to this many seconds.")
@namespace_option
def start(name: str, wait: float | None, namespace: str) -> None:
    """Start the pipeline of Environment NAME again (spec.suspend=false)."""
    from ssmd.cli.cluster import with_kube

    body = with_kube(lambda kube: _set_suspend(kube, name, namespace, False, wait))
    _print_status(name, body, False)


@ops.command()
@click.argument("name")
@namespace_option
@json_option
def status(name: str, namespace: str, as_json: bool) -> None:
    """Show the phase of Environment NAME and each start/stop step."""
    from ssmd.cli.cluster import get_or_fail, with_kube

    body = with_kube(lambda kube: get_or_fail(kube, "Environment", namespace, name))
    _print_status(name, body, as_json)
