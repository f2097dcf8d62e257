"""``ssmd feed``: list and show Feed resources (the versions in effect, who uses them)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import click

from ssmd.cli.cluster import json_option, namespace_option
from ssmd.cli.errors import UserError

if TYPE_CHECKING:
    from ssmd_operator.kube import Kube


def _day(value: str | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"--as-of {value!r} is not a date (YYYY-MM-DD)") from None


def _summary(body: dict[str, Any], day: date) -> dict[str, Any]:
    from ssmd.spec import SpecError
    from ssmd_operator.feeds import validate, version_table

    st = body.get("status") or {}
    out: dict[str, Any] = {
        "name": body["metadata"]["name"],
        "environments": st.get("environments") or [],
        "markets": st.get("markets"),
    }
    try:
        feed = validate(body)
    except SpecError as exc:
        return {**out, "error": "; ".join(exc.problems)}
    active = feed.spec.active_version(day)
    return {
        **out,
        "venue": feed.spec.venue,
        "asOf": day.isoformat(),
        "activeVersion": active.version if active else None,
        "endpoint": active.endpoint if active else None,
        "versions": version_table(feed, day),
    }


@click.group()
def feed() -> None:
    """List and show Feed resources."""


@feed.command("list")
@click.option("--as-of", "as_of", help="Which version was in effect on this date (YYYY-MM-DD).")
@namespace_option
@json_option
def list_(as_of: str | None, namespace: str, as_json: bool) -> None:
    """List the Feeds with the version in effect (today, or --as-of DATE)."""
    from ssmd.cli.cluster import table, with_kube

    day = _day(as_of)

    async def run(kube: Kube) -> list[dict[str, Any]]:
        return [_summary(b, day) for b in await kube.list("Feed", namespace)]

    feeds = with_kube(run)
    if as_json:
        click.echo(json.dumps(feeds, indent=2))
        return
    rows = [
        [f["name"], f.get("venue", "?"), f.get("activeVersion") or "-",
         str(f["markets"]) if f.get("markets") is not None else "-",
         ",".join(f["environments"]) or "-"]
        for f in feeds
    ]  # fmt: skip
    if not rows:
        click.echo(f"no Feeds in namespace {namespace}")
        return
    click.echo(table(rows, ["NAME", "VENUE", f"ACTIVE ({day})", "MARKETS", "ENVIRONMENTS"]))


@feed.command()
@click.argument("name")
@click.option("--as-of", "as_of", help="Which version was in effect on this date (YYYY-MM-DD).")
@namespace_option
@json_option
def show(name: str, as_of: str | None, namespace: str, as_json: bool) -> None:
    """Show Feed NAME: its versions and the one in effect (today, or --as-of DATE)."""
    from ssmd.cli.cluster import get_or_fail, table, with_kube

    day = _day(as_of)
    body = with_kube(lambda kube: get_or_fail(kube, "Feed", namespace, name))
    s = _summary(body, day)
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    if "error" in s:
        raise UserError(f"Feed {name} is invalid: {s['error']}")
    click.echo(f"Feed {namespace}/{name} ({s['venue']})")
    click.echo(f"  in effect on {day}: {s['activeVersion'] or 'none'}"
               f"{' -> ' + s['endpoint'] if s['endpoint'] else ''}")  # fmt: skip
    click.echo(f"  environments: {', '.join(s['environments']) or '-'}")
    click.echo(f"  markets: {s['markets'] if s['markets'] is not None else '-'}")
    rows = [[v["version"], v["effectiveFrom"], v["effectiveTo"] or "-", "*" if v["active"] else "",
             v["endpoint"]] for v in s["versions"]]  # fmt: skip
    click.echo(table(rows, ["VERSION", "FROM", "TO", "ACTIVE", "ENDPOINT"]))
