"""The ``ssmd`` command. Each command group lives in its own module and is imported lazily,
so ``ssmd --help`` stays fast and a broken optional part cannot break the others."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

import click

from ssmd import __version__

# command name -> "module:attribute" of a click.Command. Add a line to plug a command in.
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("ssmd.cli.up", "Run every component of one environment on this machine."),
    "sim": ("ssmd.cli.sim", "Run a built-in exchange simulator (Kalshi)."),
    "env": ("ssmd.cli.env", "Validate, apply and inspect Environment resources."),
    "crds": ("ssmd.cli.crds", "Print the CustomResourceDefinitions generated from the models."),
    "connector": ("ssmd.cli.connector", "Run the connector (exchange -> JetStream)."),
    "archiver": ("ssmd.cli.archiver", "Run the archiver (JetStream -> files)."),
    "gateway": ("ssmd.cli.gateway", "Run the gateway (WebSocket + REST for clients)."),
    "secmaster": ("ssmd.cli.secmaster", "Run the secmaster (market metadata -> NATS KV)."),
    "operator": ("ssmd.cli.operator_cmd", "Run the Kubernetes operator (kopf)."),
    "data": ("ssmd.cli.data", "Inspect, replay and export archived data."),
    "dlq": ("ssmd.cli.dlq", "List, replay and purge dead letters."),
    "status": ("ssmd.cli.status", "Show the status documents of a running environment."),
    "market": ("ssmd.cli.market", "List and show markets from the secmaster."),
    "feed": ("ssmd.cli.feed", "List and show Feed resources."),
    "key": ("ssmd.cli.key", "Manage the keys an environment needs (sealed, never plain)."),
    "ops": ("ssmd.cli.ops", "Start, stop and show the phase of an environment's pipeline."),
    "client": ("ssmd.cli.client", "List and manage clients of a running gateway."),
    "mcp": ("ssmd.cli.mcp", "Serve market data to AI agents over MCP."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, (mod, _) in COMMANDS.items() if _importable(mod))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, _ = entry
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None  # not built yet
            raise
        cmd = getattr(module, cmd_name.replace("-", "_"), None)
        return cmd if isinstance(cmd, click.Command) else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _importable(module_name: str) -> bool:
    return importlib.util.find_spec(module_name) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ssmd")
def cli() -> None:
    """ssmd: capture, stream and archive prediction-market data.

    Start with `ssmd up`: it runs a NATS JetStream server, the built-in Kalshi simulator
    and every component on this machine, with data under ./data.
    """


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="ssmd")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
