"""``ssmd crds``: print the CRDs generated from the models."""

from __future__ import annotations

import click


@click.command()
def crds() -> None:
    """Print the three CustomResourceDefinitions (Environment, Feed, Key) as YAML.

    They are generated from the same pydantic models the runtime and operator use:
    `ssmd crds > crds/ssmd.io_crds.yaml` refreshes the checked-in copy, and
    `ssmd crds | kubectl apply -f -` installs them.
    """
    from ssmd.spec.crd import render_yaml

    click.echo(render_yaml(), nl=False)
