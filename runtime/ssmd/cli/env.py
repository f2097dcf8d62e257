"""``ssmd env``: validate and inspect Environment resources."""

from __future__ import annotations

from pathlib import Path

import click

from ssmd.cli.errors import UserError


@click.group()
def env() -> None:
    """Validate, apply and inspect Environment resources."""


@env.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when every file is valid.")
def validate(files: tuple[Path, ...], quiet: bool) -> None:
    """Check FILES offline against the resource schemas (Environment, Feed, Key).

    Stops at the first invalid file with exit code 1 and one line per problem:
    FILE: FIELD.PATH: what is wrong.
    """
    from ssmd.spec.loader import SpecError, load_file

    for path in files:
        try:
            resources = load_file(path)
        except SpecError as exc:
            raise UserError(str(exc)) from None
        if not quiet:
            names = ", ".join(f"{r.kind}/{r.metadata.name}" for r in resources)
            click.echo(f"✓ {path}: {names}")
