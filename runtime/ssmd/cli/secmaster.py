"""``ssmd secmaster --env ENV.yaml``: market metadata from Kalshi REST into NATS KV."""

from __future__ import annotations

from pathlib import Path

import click

from ssmd.cli.component_cli import context, env_option, nats_option, run_component


@click.command()
@env_option
@nats_option
@click.option("--rest-url", default=None, help="Exchange REST base URL (default: from spec.feed).")
def secmaster(env_file: Path, nats_url: str | None, rest_url: str | None) -> None:
    """Sync series, events and markets at start and every spec.secmaster.syncInterval.

    Each changed market is written to KV {env}-secmaster (history kept) and announced on
    {env}.{feed}.meta.market.{ticker}."""
    from ssmd.secmaster.service import Secmaster

    ctx = context(env_file, nats_url, rest_url=rest_url)
    run_component(Secmaster(ctx))
