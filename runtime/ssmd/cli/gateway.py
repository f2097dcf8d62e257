"""``ssmd gateway --env ENV.yaml``: the WebSocket + REST gateway alone."""

from __future__ import annotations

from pathlib import Path

import click

from ssmd.cli.component_cli import context, env_option, nats_option, run_component


@click.command()
@env_option
@nats_option
@click.option("--host", default=None, help="Bind address (default: spec.gateway.host).")
@click.option("--port", type=int, default=None, help="Port (default: spec.gateway.port).")
def gateway(env_file: Path, nats_url: str | None, host: str | None, port: int | None) -> None:
    """Serve live books, trades, tickers and lifecycle events to clients.

    WebSocket /v1/stream, REST /v1/markets..., /v1/health, /v1/meta/..., /v1/openapi.json
    and Prometheus /metrics, all on one port."""
    from ssmd.gateway.service import Gateway

    ctx = context(env_file, nats_url)
    gw = Gateway(ctx, host=host, port=port)
    run_component(gw, lambda: f"gateway: {gw.url}/v1/stream  ({ctx.source} data)")
