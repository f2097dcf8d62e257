"""The codebase stays ruff-clean and mypy-clean: checked by the test suite, so CI enforces it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from .support import ROOT


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(ROOT / ".venv" / "bin")) or shutil.which(name)
    if path is None:  # the test extra installs both; a missing tool is a broken install
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return path


def test_ruff_clean() -> None:
    proc = subprocess.run(
        [_tool("ruff"), "check", "--no-cache", "runtime", "operator", "tests", "bench"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_clean() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
