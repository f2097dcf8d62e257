"""``ssmd sim kalshi``: help, one-line errors, and a real run stopped with Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from ssmd.cli.main import cli
from ssmd.feeds.kalshi.auth import public_key_pem

from .sim_kalshi_helpers import signing_key


def test_help_explains_every_option() -> None:
    out = CliRunner().invoke(cli, ["sim", "kalshi", "--help"]).output
    for opt in (
        "--host",
        "--port",
        "--seed",
        "--markets",
        "--rate",
        "--start-ms",
        "--data-dir",
        "--key",
        "--allow-unauthenticated",
        "--fault",
        "--ping-interval",
    ):
        assert opt in out
    assert "SIMULATED" in out


def test_bad_input_is_one_line_error(tmp_path: Path) -> None:
    runner = CliRunner()
    for args, needle in (
        (["--fault", "explode"], "--fault"),
        (["--key", "no-equals-sign"], "KEYID=PUBKEY.pem"),
        (["--key", f"k={tmp_path / 'missing.pem'}"], "cannot read"),
        (["--port", "0", "--data-dir", "/proc/no-such-dir"], "demo key pair"),
    ):
        res = runner.invoke(cli, ["sim", "kalshi", *args])
        assert res.exit_code == 1, res.output
        assert res.output.startswith("error: ") and needle in res.output
        assert len(res.output.strip().splitlines()) == 1


def test_port_in_use_is_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        pub = tmp_path / "pub.pem"
        pub.write_bytes(public_key_pem(signing_key().public_key()))
        res = CliRunner().invoke(cli, ["sim", "kalshi", "--port", str(port), "--key", f"k={pub}"])
    assert (
        res.exit_code == 1
        and res.output == f"error: port {port} on 127.0.0.1 is in use; pick another with --port\n"
    )


def test_runs_until_ctrl_c(tmp_path: Path) -> None:
    pub = tmp_path / "pub.pem"
    pub.write_bytes(public_key_pem(signing_key().public_key()))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ssmd.cli.main",
            "sim",
            "kalshi",
            "--port",
            "0",
            "--seed",
            "3",
            "--markets",
            "7",
            "--key",
            f"test-key={pub}",
            "--data-dir",
            str(tmp_path / "sim"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(lines)
        assert "SIMULATED" in text
        rest = next(ln.split()[-1] for ln in lines if ln.strip().startswith("REST"))
        assert rest.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{rest}/markets") as r:
            assert len(json.load(r)["markets"]) == 7
        assert not (tmp_path / "sim").exists()  # keys were given: no demo pair written
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "simulator stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
