"""One-line errors for the command line: what is wrong and what to do."""

from __future__ import annotations

import click


class UserError(click.ClickException):
    """Printed as ``error: <message>`` and exit code 1, never with a traceback."""

    exit_code = 1

    def format_message(self) -> str:
        return self.message

    def show(self, file: object = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)
