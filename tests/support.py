"""Helpers shared by tests (import as ``from .support import ...``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ssmd.spec import Environment, validate_document

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_environment(name: str = "test", **spec: Any) -> Environment:
    """An Environment from keyword overrides of ``spec`` (camelCase keys, as in YAML)."""
    doc = {
        "apiVersion": "ssmd.io/v1alpha1",
        "kind": "Environment",
        "metadata": {"name": name},
        "spec": spec,
    }
    env = validate_document(doc)
    assert isinstance(env, Environment)
    return env


async def until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Await ``cond()`` becoming true, with a bounded deadline (no fixed sleeps in tests)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
