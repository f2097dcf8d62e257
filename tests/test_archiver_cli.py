"""The archiver's command line, metrics, status document, gzip format and error messages."""

from __future__ import annotations

import errno
from pathlib import Path

import yaml
from click.testing import CliRunner
from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client import REGISTRY

from ssmd.archiver import Archiver
from ssmd.archiver.writer import explain_os_error
from ssmd.cli.main import cli
from ssmd.transport.kv import read_status
from ssmd.transport.server import EmbeddedNats
from ssmd.transport.streams import ensure_streams

from .archiver_support import (
    BASE_NS,
    FakeClock,
    archive_env,
    ctx_for,
    message,
    publish_all,
    read_day,
)


def test_cli_refuses_without_nats_url_in_one_line(tmp_path: Path) -> None:
    env_file = tmp_path / "env.yaml"
    env_file.write_text(
        yaml.safe_dump(
            {"apiVersion": "ssmd.io/v1alpha1", "kind": "Environment", "metadata": {"name": "x"}}
        )
    )
    res = CliRunner().invoke(cli, ["archiver", "--env", str(env_file)])
    assert res.exit_code == 1
    assert res.stderr.count("\n") == 1 and "--nats-url" in res.stderr
    res = CliRunner().invoke(
        cli,
        ["archiver", "--env", str(tmp_path / "missing.yaml"), "--nats-url", "nats://127.0.0.1:1"],
    )
    assert res.exit_code == 1 and "no such file" in res.stderr


def test_full_disk_error_names_path_and_what_to_do(tmp_path: Path) -> None:
    err = explain_os_error(tmp_path / "x.partial", OSError(errno.ENOSPC, "No space left on device"))
    assert str(tmp_path / "x.partial") in str(err) and "disk is full" in str(err)
    assert "unacked messages stay in JetStream" in str(err)


async def test_metrics_status_and_gzip_format(
    nats_server: EmbeddedNats, nc: Client, js: JetStreamContext, tmp_path: Path
) -> None:
    env = archive_env(tmp_path / "a", name="mtest", format="gzip", rotationInterval="1m")
    await ensure_streams(js, env)
    await publish_all(
        nc, [message("mtest", "kalshi", i, BASE_NS + i * 30_000_000_000) for i in range(4)]
    )
    arch = Archiver(ctx_for(env, nats_server.url, tmp_path), now=FakeClock(BASE_NS / 1e9))
    await arch.start()
    await arch.wait_until_acked(4)
    snap = arch.status_snapshot()
    assert snap["current_file"] == "2026-01-01/0001.jsonl.gz.partial"
    assert snap["last_closed_file"] == "2026-01-01/0000.jsonl.gz"
    assert snap["acked_seq"] == 4 and snap["lag"] == 0
    await arch.stop()
    doc = (await read_status(js, "mtest"))["archiver"]
    assert doc["last_closed_file"] == "2026-01-01/0001.jsonl.gz" and doc["current_file"] is None
    labels = {"env": "mtest", "feed": "kalshi"}
    assert REGISTRY.get_sample_value("ssmd_archiver_records_written_total", labels) == 4
    assert REGISTRY.get_sample_value("ssmd_archiver_files_written_total", labels) == 2
    m, records = read_day(tmp_path / "a", "kalshi", "2026-01-01")
    assert REGISTRY.get_sample_value("ssmd_archiver_bytes_written_total", labels) == m.bytes
    assert REGISTRY.get_sample_value("ssmd_archiver_consumer_lag", labels) == 0
    assert [f.name for f in m.files] == ["0000.jsonl.gz", "0001.jsonl.gz"]
    assert m.compression == "gzip" and [r.seq for r in records] == [1, 2, 3, 4]
