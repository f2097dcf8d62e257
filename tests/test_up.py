"""`ssmd up` end to end: the README's main command, as a user runs it (a real subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from .support import ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _read_until(stream: asyncio.StreamReader, needle: str, seen: list[str]) -> str:
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError(f"stream ended before {needle!r}; output so far: {seen}")
        line = raw.decode()
        seen.append(line)
        if needle in line:
            return line


async def test_up_runs_the_simulated_pipeline_and_stops_cleanly(tmp_path: Path) -> None:
    env_file = tmp_path / "local.yaml"
    text = (ROOT / "environments" / "local.yaml").read_text()
    env_file.write_text(text.replace("port: 8080", f"port: {_free_port()}"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ssmd.cli.main", "up", str(env_file),
        "--data-dir", str(tmp_path / "data"), "--status-every", "0.5",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    out: list[str] = []
    err: list[str] = []
    banner = await asyncio.wait_for(_read_until(proc.stderr, "SIMULATED DATA", err), 30)
    assert "Nothing captured here is real market data" in banner
    # keep draining stderr (logs) so the child never blocks on a full pipe
    drain = asyncio.create_task(proc.stderr.read())
    try:
        await asyncio.wait_for(_read_until(proc.stdout, "ssmd up: ready", out), 30)
        summary = "".join(out)
        for part in ("NATS JetStream", "LOCAL_KALSHI", "simulator", "connector", "archiver"):
            assert part in summary
        # a status line once the connector reports frames flowing
        line = await asyncio.wait_for(_read_until(proc.stdout, " msg/s", out), 30)
        assert line.split("|")[0].strip().endswith("SIMULATED")
        # another command in the same directory finds the running stack's NATS by itself
        status = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ssmd.cli.main", "status", "--env", str(env_file), "--json",
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        s_out, s_err = await asyncio.wait_for(status.communicate(), 30)
        assert status.returncode == 0, s_err.decode()
        docs = json.loads(s_out)
        assert docs["connector"]["source"] == "simulator"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        rest_err = (await asyncio.wait_for(drain, 60)).decode()
        code = await asyncio.wait_for(proc.wait(), 60)
    assert code == 0, "".join(err) + rest_err
    assert "stopped cleanly" in rest_err
    assert "Traceback" not in rest_err
    # The archiver closed its file on the way down; the manifest says the data is simulated.
    manifests, partials = _archive_state(tmp_path)
    assert len(manifests) == 1, "expected one day's manifest"
    assert manifests[0]["source"] == "simulator"
    assert sum(f["records"] for f in manifests[0]["files"]) > 0
    assert partials == []


def _archive_state(root: Path) -> tuple[list[dict[str, Any]], list[Path]]:
    manifests = [json.loads(p.read_text()) for p in root.rglob("manifest.json")]
    return manifests, list(root.rglob("*.partial"))


def test_up_rejects_a_bad_environment_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ssmd.cli.main import cli

    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: ssmd.io/v1alpha1\nkind: Environment\nmetadata: {name: x}\n"
                   "spec: {transport: {stream: {maxAge: soon}}}\n")  # fmt: skip
    result = CliRunner().invoke(cli, ["up", str(bad)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f'error: {bad}: spec.transport.stream.maxAge: "soon" is not a duration '
        "(e.g. 24h, 90m, 30s, 500ms)"
    )
