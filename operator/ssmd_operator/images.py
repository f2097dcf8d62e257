"""Default image names: one runtime image for every component, one for the operator,
both tagged with the project's version unless the spec says otherwise."""

from __future__ import annotations

from ssmd import __version__

RUNTIME_REPOSITORY = "ghcr.io/ssmd/ssmd"
OPERATOR_REPOSITORY = "ghcr.io/ssmd/ssmd-operator"


def image_ref(repository: str, tag: str | None = None) -> str:
    return f"{repository}:{tag or __version__}"


def runtime_image(tag: str | None = None) -> str:
    return image_ref(RUNTIME_REPOSITORY, tag)


def operator_image(tag: str | None = None) -> str:
    return image_ref(OPERATOR_REPOSITORY, tag)
