"""``ssmd status``: the ``{env}-status`` documents of a running environment."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import click

from ssmd.cli.errors import UserError


def _target(env_file: Path | None, nats_url: str | None, name: str | None) -> tuple[str, str]:
    from ssmd.cli.component_cli import NATS_URL_VAR, load_env, nats_url_for

    if env_file is not None:
        env = load_env(env_file)
        return nats_url_for(env, env_file, nats_url), name or env.name
    import os

    url = nats_url or os.environ.get(NATS_URL_VAR)
    if not url or not name:
        raise UserError("give --env FILE, or --nats-url URL (or $SSMD_NATS_URL) and --name ENV")
    return url, name


async def _read(url: str, name: str) -> dict[str, dict[str, Any]]:
    from ssmd.transport.connect import connect
    from ssmd.transport.kv import read_status

    nc = await connect(url, name="ssmd-status", reconnect=False, initial_attempts=1)
    try:
        return await read_status(nc.jetstream(), name)
    finally:
        await nc.close()


def _age(value: Any, now: float) -> str:
    if not isinstance(value, int | float) or not value:
        return "-"
    secs = now - (value / 1e9 if value > 1e12 else value)
    return f"{secs:.1f}s ago" if secs < 120 else f"{secs / 60:.0f}m ago"


@click.command()
@click.option(
    "--env", "env_file", type=click.Path(path_type=Path), default=None, help="Environment YAML."
)
@click.option(
    "--nats-url", default=None, help="NATS URL (default: $SSMD_NATS_URL, then spec.transport.url)."
)
@click.option("--name", default=None, help="Environment name (with --nats-url).")
@click.option("--json", "as_json", is_flag=True, help="Print the documents as JSON.")
def status(env_file: Path | None, nats_url: str | None, name: str | None, as_json: bool) -> None:
    """Show what every component of an environment reports (connections, markets per shard,
    msgs/s, last frame, gaps today)."""
    from ssmd.transport.connect import NatsUnavailable

    url, env_name = _target(env_file, nats_url, name)
    try:
        docs = asyncio.run(_read(url, env_name))
    except NatsUnavailable as exc:
        raise UserError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(docs, indent=2, sort_keys=True))
        return
    if not docs:
        click.echo(f"no status documents for environment {env_name!r} (is it running?)")
        return
    from rich.console import Console
    from rich.table import Table

    now = time.time()
    table = Table(title=f"ssmd {env_name}")
    for col in ("component", "source", "heartbeat", "markets", "connections", "msgs/s"):
        table.add_column(col, no_wrap=True)
    for col in ("last frame", "gaps today", "detail"):
        table.add_column(col, overflow="fold")
    for comp, doc in sorted(docs.items()):
        conns = doc.get("connections")
        if isinstance(conns, list):
            up = sum(1 for c in conns if isinstance(c, dict) and c.get("connected"))
            conn_txt = f"{up}/{len(conns)}"
        else:
            conn_txt = str(conns) if conns is not None else "-"
        shards = doc.get("shards")
        detail = []
        if isinstance(shards, dict) and shards:
            detail.append(
                "shards "
                + " ".join(
                    f"{k}:{v}"
                    for k, v in sorted(
                        shards.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0
                    )
                )
            )
        for key in ("spill_depth", "in_flight", "dead_letters", "reconnects"):
            if doc.get(key):
                detail.append(f"{key} {doc[key]}")
        table.add_row(
            comp,
            str(doc.get("source", "-")),
            _age(doc.get("heartbeat"), now),
            str(doc.get("markets", "-")),
            conn_txt,
            str(doc.get("msgs_per_sec", "-")),
            _age(doc.get("last_frame_ns"), now),
            str(doc.get("gaps_today", "-")),
            ", ".join(detail),
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # piped: do not squeeze the table into 80 columns
    console.print(table)
