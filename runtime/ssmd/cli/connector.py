"""``ssmd connector --env ENV.yaml``: run the connector alone (the container entrypoint)."""

from __future__ import annotations

from pathlib import Path

import click

from ssmd.cli.component_cli import env_option, load_env, nats_option, nats_url_for, run_component
from ssmd.cli.errors import UserError


@click.command()
@env_option
@nats_option
@click.option(
    "--ws-url", default=None, help="Exchange WebSocket URL (default: spec.feed.endpoint)."
)
@click.option("--rest-url", default=None, help="Exchange REST base URL (default: derived).")
@click.option(
    "--data-dir",
    default=Path("./data"),
    type=click.Path(path_type=Path),
    show_default=True,
    help="Local working directory (the spill file lives in DATA_DIR/spill).",
)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Prometheus /metrics, /healthz, /readyz port (default: spec.connector.metricsPort; 0 = off).",
)
@click.option(
    "--metrics-host", default="0.0.0.0", show_default=True, help="Metrics/probe bind address."
)
@click.option(
    "--sim-keys",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory of the simulator's demo key (`ssmd sim kalshi` writes it), for a `sim` feed.",
)
def connector(
    env_file: Path,
    nats_url: str | None,
    ws_url: str | None,
    rest_url: str | None,
    data_dir: Path,
    metrics_port: int | None,
    metrics_host: str,
    sim_keys: Path | None,
) -> None:
    """Capture the exchange into JetStream: every frame, byte for byte, every gap recorded.

    SIGTERM or Ctrl-C publishes what is queued (or keeps it in the spill file) and exits."""
    from ssmd.connector.service import Connector, ConnectorError
    from ssmd.feeds.kalshi.rest_client import RestError
    from ssmd.runtime import RuntimeContext

    env = load_env(env_file)
    if env.spec.feed.is_simulated and ws_url is None:
        raise UserError(
            f"{env_file}: spec.feed.endpoint is 'sim': run `ssmd up`, or start "
            "`ssmd sim kalshi` and pass its URL with --ws-url"
        )
    for name, url, schemes in (
        ("--ws-url", ws_url, ("ws://", "wss://")),
        ("--rest-url", rest_url, ("http://", "https://")),
    ):
        if url is not None and not url.startswith(schemes):
            raise UserError(f"{name} {url!r} must start with {' or '.join(schemes)}")
    port = metrics_port if metrics_port is not None else env.spec.connector.metrics_port
    ctx = RuntimeContext(
        env=env,
        nats_url=nats_url_for(env, env_file, nats_url),
        data_dir=data_dir,
        feed_ws_url=ws_url,
        feed_rest_url=rest_url,
        metrics_port=port or None,
        sim_credentials_dir=sim_keys,
    )
    component = Connector(ctx, metrics_host=metrics_host)

    def banner() -> str:
        n, shards = len(component.markets), len(component.shards)
        return f"connector {env.name}/{env.spec.feed.name}: {n} markets on {shards} connections ({ctx.source})"

    try:
        run_component(component, banner)
    except (ConnectorError, RestError) as exc:
        raise UserError(str(exc)) from None
