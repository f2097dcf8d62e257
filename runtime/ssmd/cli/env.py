"""``ssmd env``: validate and inspect Environment resources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from ssmd.cli.cluster import json_option, namespace_option
from ssmd.cli.errors import UserError

if TYPE_CHECKING:
    from ssmd_operator.kube import Kube


@click.group()
def env() -> None:
    """Validate, apply and inspect Environment resources."""


@env.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when every file is valid.")
@click.option(
    "--cluster", is_flag=True,
    help="Also check against the cluster: feed exists and is active, keys set, NATS and storage reachable.",
)  # fmt: skip
@click.option(
    "--namespace", "-n", help="Namespace for --cluster (default: the file's, else default)."
)
def validate(files: tuple[Path, ...], quiet: bool, cluster: bool, namespace: str | None) -> None:
    """Check FILES offline against the resource schemas (Environment, Feed, Key).

    Stops at the first invalid file with exit code 1 and one line per problem:
    FILE: FIELD.PATH: what is wrong. With --cluster, one ✓/✗ line per check of each
    Environment, and exit code 1 on any ✗.
    """
    from ssmd.spec.loader import SpecError, load_file

    failed = False
    for path in files:
        try:
            resources = load_file(path)
        except SpecError as exc:
            raise UserError(str(exc)) from None
        if not quiet:
            names = ", ".join(f"{r.kind}/{r.metadata.name}" for r in resources)
            click.echo(f"✓ {path}: {names}")
        if cluster:
            failed |= _cluster_check(resources, namespace, quiet)
    if failed:
        raise SystemExit(1)


def _cluster_check(resources: list[Any], namespace: str | None, quiet: bool) -> bool:
    """Print the cluster checks of each Environment; True when any failed."""
    import asyncio

    from ssmd.cli.preflight import cluster_checks
    from ssmd.spec import Environment

    failed = False
    for r in resources:
        if not isinstance(r, Environment):
            continue
        ns = namespace or r.metadata.namespace or "default"
        checks = asyncio.run(cluster_checks(r, ns))
        for c in checks:
            if not c.ok or not quiet:
                click.echo(f"  {c.line()}")
        failed |= not all(c.ok for c in checks)
    return failed


@env.command()
@click.argument("name")
@click.option("--version", "version", type=int, help="Show this recorded version of the spec.")
@namespace_option
@json_option
def show(name: str, version: int | None, namespace: str, as_json: bool) -> None:
    """Show Environment NAME: its spec and status, or a recorded spec version."""
    from ssmd.cli.cluster import condition, get_or_fail, with_kube
    from ssmd_operator import versions

    async def run(kube: Kube) -> None:
        body = await get_or_fail(kube, "Environment", namespace, name)
        if version is not None:
            cm = await get_or_fail(
                kube, "ConfigMap", namespace, versions.configmap_name(name, version)
            )
            text = versions.spec_text(cm)
            if as_json:
                click.echo(
                    json.dumps(
                        {
                            "version": version,
                            **versions.record_of(cm),
                            "spec": yaml.safe_load(text),
                        },
                        indent=2,
                    )
                )
            else:
                click.echo(f"# {name} version {version} ({versions.record_of(cm)['time']})")
                click.echo(text, nl=False)
            return
        st = body.get("status") or {}
        if as_json:
            click.echo(json.dumps({"spec": body.get("spec"), "status": st}, indent=2))
            return
        ready = condition(st, "Ready")
        click.echo(f"Environment {namespace}/{name}")
        click.echo(f"  phase:    {st.get('phase', 'Pending')}")
        click.echo(
            f"  ready:    {ready.get('status', 'Unknown')} {ready.get('reason', '')}".rstrip()
        )
        click.echo(f"  version:  {st.get('currentVersion', '-')}")
        for c in st.get("conditions") or []:
            click.echo(
                f"  {c['type']}: {c['status']} {c.get('reason', '')} {c.get('message', '')}".rstrip()
            )
        click.echo("spec:")
        click.echo(yaml.safe_dump(body.get("spec") or {}, sort_keys=False), nl=False)

    with_kube(run)


@env.command()
@click.argument("name")
@namespace_option
@json_option
def history(name: str, namespace: str, as_json: bool) -> None:
    """List the recorded spec versions of Environment NAME (the last 20)."""
    from ssmd.cli.cluster import get_or_fail, table, with_kube
    from ssmd_operator import versions

    async def run(kube: Kube) -> None:
        body = await get_or_fail(kube, "Environment", namespace, name)
        cms = await kube.list("ConfigMap", namespace, versions.selector(name))
        records = sorted((versions.record_of(cm) for cm in cms), key=lambda r: r["version"])
        current = (body.get("status") or {}).get("currentVersion")
        if as_json:
            click.echo(json.dumps(records, indent=2))
            return
        if not records:
            click.echo(f"no versions recorded for {name} yet (is the operator running?)")
            return
        rows = [
            [str(r["version"]), r["configHash"], r["time"], "*" if r["version"] == current else ""]
            for r in records
        ]
        click.echo(table(rows, ["VERSION", "CONFIG HASH", "RECORDED", "CURRENT"]))

    with_kube(run)


@env.command()
@click.argument("name")
@click.option("--v1", "v1", type=int, required=True, help="The older version.")
@click.option("--v2", "v2", type=int, help="The newer version (default: the current one).")
@namespace_option
def diff(name: str, v1: int, v2: int | None, namespace: str) -> None:
    """Show what changed in Environment NAME's spec between two recorded versions."""
    from ssmd.cli.cluster import get_or_fail, with_kube
    from ssmd_operator import versions

    async def run(kube: Kube) -> None:
        body = await get_or_fail(kube, "Environment", namespace, name)
        newer = v2 if v2 is not None else (body.get("status") or {}).get("currentVersion")
        if newer is None:
            raise UserError(f"{name} has no recorded version yet; give --v2")
        texts = []
        for v in (v1, int(newer)):
            cm = await kube.get("ConfigMap", namespace, versions.configmap_name(name, v))
            if cm is None:
                raise UserError(
                    f"version {v} of {name} is not recorded (see `ssmd env history {name}`)"
                )
            texts.append(versions.spec_text(cm))
        out = versions.diff(texts[0], texts[1], f"{name} v{v1}", f"{name} v{newer}")
        click.echo(out if out else f"versions {v1} and {newer} are identical", nl=not out)

    with_kube(run)


@env.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--namespace", "-n", help="Namespace (default: the file's, else default).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait until Ready.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for Ready.")
def apply(file: Path, namespace: str | None, wait: bool, timeout: float) -> None:
    """Validate FILE, check it against the cluster, apply it, and wait until it is Ready.

    Feed and Key documents in FILE are applied first. The Environment is refused, with
    the failing check, when any check of `ssmd env validate --cluster` fails."""
    import asyncio

    from ssmd.cli.apply import apply_file

    code = asyncio.run(apply_file(file, namespace, wait=wait, timeout=timeout))
    if code:
        raise SystemExit(code)
