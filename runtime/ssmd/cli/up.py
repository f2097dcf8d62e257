"""``ssmd up``: run every component of one environment on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

import click

from ssmd.cli.errors import UserError
from ssmd.spec.common import ObjectMeta
from ssmd.spec.environment import Environment
from ssmd.up import LocalStack

DEFAULT_ENV = Path("environments/local.yaml")


def _default_env_path() -> Path | None:
    if DEFAULT_ENV.is_file():
        return DEFAULT_ENV
    return None


@click.command()
@click.argument("environment", required=False, type=click.Path(path_type=Path))
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Where NATS, the simulator key and the archive live (relative paths in the "
    "environment are relative to the current directory).",
)
@click.option(
    "--status-every",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds between status lines when not on a terminal.",
)
@click.option("--log-level", default="INFO", show_default=True, help="Python logging level.")
def up(environment: Path | None, data_dir: Path, status_every: float, log_level: str) -> None:
    """Run all components of ENVIRONMENT (default: environments/local.yaml, or the built-in
    local environment) on this machine: an embedded NATS JetStream server, the Kalshi
    simulator when the feed endpoint is `sim`, and the connector, archiver, gateway and
    secmaster. Ctrl-C stops everything cleanly, flushing data first.
    """
    from ssmd.spec.loader import SpecError, load_environment

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if environment is None:
            path = _default_env_path()
            env = load_environment(path) if path else _builtin_local()
        else:
            env = load_environment(environment)
    except SpecError as exc:
        raise UserError(str(exc)) from None
    try:
        asyncio.run(_main(env, data_dir, status_every))
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        sys.exit(130)


def _builtin_local() -> Environment:
    """With no file at hand, the defaults of every field *are* the local environment:
    simulator feed, embedded NATS, archive under ./data (tests keep local.yaml equal)."""
    return Environment(metadata=ObjectMeta(name="local"))


async def _main(env: Environment, data_dir: Path, status_every: float) -> None:
    from ssmd.transport.connect import NatsUnavailable
    from ssmd.transport.server import NatsServerError
    from ssmd.transport.streams import StreamConfigError
    from ssmd.up import SIMULATED_BANNER

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    stack = LocalStack(env=env, data_dir=data_dir)
    if env.spec.feed.is_simulated:
        click.secho(SIMULATED_BANNER, fg="yellow", bold=True, err=True)
    try:
        await stack.start()
    except (NatsUnavailable, NatsServerError, StreamConfigError, OSError) as exc:
        raise UserError(f"cannot start: {exc}") from None
    try:
        for key, value in stack.describe():
            click.echo(f"  {key:<16} {value}")
        click.echo("ssmd up: ready (Ctrl-C to stop)", err=False)
        sys.stdout.flush()
        await _report(stack, stop, status_every)
    finally:
        click.echo("ssmd up: stopping (flushing data)...", err=True)
        await stack.stop()
        click.echo("ssmd up: stopped cleanly", err=True)


async def _report(stack: LocalStack, stop: asyncio.Event, every: float) -> None:
    """A status line every few seconds from the components' KV documents."""
    from ssmd.transport.connect import connect
    from ssmd.transport.kv import read_status
    from ssmd.up import summarize

    assert stack.nats_url is not None
    nc = await connect(stack.nats_url, name="ssmd-up-status")
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set():
                break
            try:
                docs = await read_status(nc.jetstream(), stack.env.name)
            except Exception as exc:  # status display must not stop the stack
                click.echo(f"status unavailable: {exc}", err=True)
                continue
            parts = []
            for name, doc in sorted(docs.items()):
                age = time.time() - float(doc.get("heartbeat", 0))
                stale = " (no heartbeat)" if age > max(3 * every, 10) else ""
                parts.append(f"{name}: {summarize(doc)}{stale}")
            source = "SIMULATED" if stack.env.spec.feed.is_simulated else "exchange"
            line = " | ".join(parts or ["starting"])
            click.echo(f"[{time.strftime('%H:%M:%S')}] {source} | {line}")
    finally:
        await nc.close()
