"""Shared plumbing for the gateway/secmaster/market CLI commands: environment + NATS URL,
and running one component until SIGTERM/Ctrl-C."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

import click

from ssmd.cli.errors import UserError
from ssmd.runtime import Component, RuntimeContext
from ssmd.spec.environment import Environment

NATS_URL_VAR = "SSMD_NATS_URL"

env_option = click.option(
    "--env", "env_file", required=True, type=click.Path(path_type=Path), help="Environment YAML."
)
nats_option = click.option(
    "--nats-url",
    default=None,
    help=f"NATS URL (default: ${NATS_URL_VAR}, then spec.transport.url, then the "
    "`ssmd up` running from ./data).",
)


def load_env(env_file: Path) -> Environment:
    from ssmd.spec.loader import SpecError, load_environment

    try:
        return load_environment(env_file)
    except SpecError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{env_file}: {exc.strerror or exc}") from None


def nats_url_for(env: Environment, env_file: Path, nats_url: str | None) -> str:
    url = nats_url or os.environ.get(NATS_URL_VAR) or env.spec.transport.url
    if not url:
        from ssmd.up import read_run_file

        running = read_run_file()  # an `ssmd up` of this environment in this directory
        if running and running.get("env") == env.name:
            url = str(running["nats_url"])
    if not url:
        raise UserError(
            f"{env_file}: no NATS URL: pass --nats-url, set ${NATS_URL_VAR} or "
            "spec.transport.url (`ssmd up` runs an embedded server)"
        )
    return url


def context(
    env_file: Path,
    nats_url: str | None,
    *,
    rest_url: str | None = None,
    data_dir: Path = Path("./data"),
) -> RuntimeContext:
    env = load_env(env_file)
    return RuntimeContext(
        env=env,
        nats_url=nats_url_for(env, env_file, nats_url),
        data_dir=data_dir,
        feed_rest_url=rest_url,
    )


def run_component(component: Component, banner: Callable[[], str] | str | None = None) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await component.start()
        # Start-up objects (models, books from checkpoints) never die: keep them out of the
        # cyclic GC so its pauses stay short on the data path.
        gc.freeze()
        if banner:
            click.echo(banner() if callable(banner) else banner, err=True)
        try:
            await stop.wait()
        finally:
            await component.stop()

    from ssmd.transport.connect import NatsUnavailable

    try:
        asyncio.run(main())
    except (NatsUnavailable, OSError, ValueError) as exc:
        raise UserError(f"{component.name}: {exc}") from None
