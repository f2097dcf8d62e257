"""``ssmd sim``: built-in exchange simulators (their data is simulated, never real)."""

from __future__ import annotations

import asyncio
import errno
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ssmd.cli.errors import UserError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey


@click.group(name="sim")
def sim() -> None:
    """Run a built-in exchange simulator.

    Simulators speak the exchange's protocol on localhost so that ssmd (or any client)
    can be run and tested without an account. Everything they send is SIMULATED data.
    """


def _load_keys(specs: tuple[str, ...]) -> dict[str, RSAPublicKey]:
    from ssmd.feeds.kalshi.auth import KeyLoadError, load_public_key

    keys: dict[str, RSAPublicKey] = {}
    for spec in specs:
        key_id, sep, path = spec.partition("=")
        if not sep or not key_id.strip() or not path.strip():
            raise UserError(f"--key {spec!r}: expected KEYID=PUBKEY.pem")
        p = Path(path.strip()).expanduser()
        try:
            keys[key_id.strip()] = load_public_key(p.read_bytes())
        except OSError as exc:
            raise UserError(f"--key {spec!r}: cannot read {p}: {exc.strerror}") from None
        except KeyLoadError as exc:
            raise UserError(f"--key {spec!r}: {p}: {exc}") from None
    return keys


@sim.command(name="kalshi")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind. Keep the default (loopback): the admin API has no access control.",
)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="One port for WebSocket (/trade-api/ws/v2), REST (/trade-api/v2) and admin (/admin). "
    "0 picks a free port.",
)
@click.option(
    "--seed",
    default=1,
    show_default=True,
    type=int,
    help="Seed of the market universe and of every event. The same seed, --start-ms and "
    "client commands give byte-identical frames.",
)
@click.option(
    "--markets",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="Number of markets at start (more open while running).",
)
@click.option(
    "--rate",
    default=200.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Total exchange frames per second across all markets (deltas, trades, tickers, "
    "lifecycle). 0 = as fast as clients read.",
)
@click.option(
    "--start-ms",
    type=int,
    default=None,
    help="Virtual clock anchor (Unix milliseconds) for all timestamps in the data. "
    "Default: the current time.",
)
@click.option(
    "--data-dir",
    default=Path("./data/sim"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo key pair is written (kalshi-demo.keyid, kalshi-demo.pem, mode 0600) "
    "when no --key is given.",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEYID=PUBKEY.pem",
    help="Accept this API key id, verified with this RSA public key (PEM). Repeatable. "
    "Without any, a demo key pair is used.",
)
@click.option(
    "--allow-unauthenticated",
    is_flag=True,
    help="Legacy optional auth: accept unsigned connections; they get error 9 on "
    "orderbook_delta and other private channels.",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND[:COUNT][@AFTER]",
    help="Inject a fault on the first connection(s) that reach it: skip_seq, duplicate, reorder, close, "
    "stall, malformed, unknown_type, error_25, error_17, error_10, rest_429. COUNT firings "
    "(default 1), after AFTER frames (default 0). Repeatable. More at run time: POST /admin/faults.",
)
@click.option(
    "--ping-interval",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Seconds between WebSocket pings (payload 'heartbeat').",
)
@click.option(
    "--pong-timeout",
    default=20.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Close a connection whose pong has not arrived within this many seconds.",
)
@click.option(
    "--lifecycle-interval",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Virtual seconds between lifecycle actions (markets opening, settling, pausing). "
    "0 disables them.",
)
def kalshi(
    host: str,
    port: int,
    seed: int,
    markets: int,
    rate: float,
    start_ms: int | None,
    data_dir: Path,
    keys: tuple[str, ...],
    allow_unauthenticated: bool,
    faults: tuple[str, ...],
    ping_interval: float,
    pong_timeout: float,
    lifecycle_interval: float,
) -> None:
    """Run a simulated Kalshi exchange (WebSocket v2 + REST v2) until Ctrl-C.

    The data is SIMULATED: generated from --seed, not from the real exchange.
    """
    from ssmd.sim.kalshi import Fault, KalshiSim, SimConfig

    try:
        parsed_faults = [Fault.parse(f) for f in faults]
    except ValueError as exc:
        raise UserError(f"--fault: {exc}") from None
    config = SimConfig(
        host=host,
        port=port,
        seed=seed,
        markets=markets,
        rate=rate,
        start_ms=start_ms,
        data_dir=data_dir,
        keys=_load_keys(keys),
        allow_unauthenticated=allow_unauthenticated,
        ping_interval_s=ping_interval,
        pong_timeout_s=pong_timeout,
        faults=parsed_faults,
        lifecycle_interval_s=lifecycle_interval,
    )

    async def run() -> None:
        simulator = KalshiSim(config)
        try:
            await simulator.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(
                    f"port {port} on {host} is in use; pick another with --port"
                ) from None
            if exc.filename:  # the demo key pair could not be written
                raise UserError(
                    f"cannot write the demo key pair in {data_dir}: {exc.strerror}; "
                    "pick another --data-dir"
                ) from None
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        click.echo("ssmd sim kalshi: SIMULATED Kalshi exchange -- this is not real market data")
        click.echo(f"  WebSocket  {simulator.ws_url}")
        click.echo(f"  REST       {simulator.rest_url}")
        click.echo(f"  admin      {simulator.admin_url}")
        click.echo(
            f"  seed {seed}, {len(simulator.markets)} markets, rate {rate:g} frames/s"
            f"{' (unlimited)' if rate == 0 else ''}, start {simulator.start_ms} ms"
        )
        if simulator.credentials_paths is not None:
            keyid_path, pem_path = simulator.credentials_paths
            click.echo(
                f"  demo key   id {simulator.key_id} in {keyid_path}, private key {pem_path}"
            )
        else:
            click.echo(f"  accepting  {len(config.keys)} key id(s)")
        if allow_unauthenticated:
            click.echo("  unsigned connections accepted (legacy optional auth)")
        click.echo("Press Ctrl-C to stop.")
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await simulator.stop()
            click.echo("simulator stopped")

    asyncio.run(run())
