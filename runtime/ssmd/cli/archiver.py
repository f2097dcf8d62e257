"""``ssmd archiver --env ENV.yaml``: run the archiver alone (the container entrypoint)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import click

from ssmd.cli.errors import UserError


@click.command()
@click.option(
    "--env", "env_file", required=True, type=click.Path(path_type=Path), help="Environment YAML."
)
@click.option("--nats-url", default=None, help="NATS URL (default: spec.transport.url).")
@click.option(
    "--data-dir",
    default=Path("./data"),
    type=click.Path(path_type=Path),
    show_default=True,
    help="Local working directory (S3 staging).",
)
@click.option(
    "--metrics-port",
    type=int,
    default=None,
    help="Prometheus port (default: spec.archiver.metricsPort; 0 = off).",
)
@click.option(
    "--metrics-host", default="127.0.0.1", show_default=True, help="Prometheus bind address."
)
def archiver(
    env_file: Path,
    nats_url: str | None,
    data_dir: Path,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Archive the environment's stream into rotated files and day manifests.

    SIGTERM or Ctrl-C closes the current file, updates the manifest, acks and exits."""
    from ssmd.archiver.service import Archiver
    from ssmd.archiver.storage import StorageError
    from ssmd.archiver.writer import ArchiveWriteError
    from ssmd.runtime import RuntimeContext
    from ssmd.spec.loader import SpecError, load_environment
    from ssmd.transport.connect import NatsUnavailable

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        env = load_environment(env_file)
    except SpecError as exc:
        raise UserError(str(exc)) from None
    url = nats_url or env.spec.transport.url
    if not url:
        raise UserError(
            f"{env_file}: no NATS URL: pass --nats-url or set spec.transport.url "
            "(`ssmd up` runs an embedded server)"
        )
    port = env.spec.archiver.metrics_port if metrics_port is None else metrics_port
    ctx = RuntimeContext(env=env, nats_url=url, data_dir=data_dir, metrics_port=port or None)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if ctx.metrics_port:
            from prometheus_client import start_http_server

            start_http_server(ctx.metrics_port, addr=metrics_host)
        arch = Archiver(ctx)
        await arch.start()
        assert arch._task is not None
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, arch._task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        await arch.stop()
        if arch.error is not None:
            raise arch.error

    try:
        asyncio.run(main())
    except (NatsUnavailable, StorageError, ArchiveWriteError, ValueError) as exc:
        raise UserError(str(exc)) from None
