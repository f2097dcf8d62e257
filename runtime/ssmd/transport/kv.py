"""Status documents in NATS KV ``{env}-status``: one key per component, written periodically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NoKeysError, NotFoundError
from nats.js.kv import KeyValue

from ssmd import subjects

log = logging.getLogger("ssmd.status")


async def ensure_kv(
    js: JetStreamContext, bucket: str, *, history: int = 1, ttl: float | None = None
) -> KeyValue:
    try:
        return await js.key_value(bucket)
    except (BucketNotFoundError, NotFoundError):
        return await js.create_key_value(
            KeyValueConfig(bucket=bucket, history=history, ttl=ttl, storage=StorageType.FILE)
        )


async def status_bucket(js: JetStreamContext, env: str) -> KeyValue:
    return await ensure_kv(js, subjects.status_bucket(env), history=1)


async def read_status(js: JetStreamContext, env: str) -> dict[str, dict[str, Any]]:
    """Every component's latest status document, by component name."""
    kv = await status_bucket(js, env)
    out: dict[str, dict[str, Any]] = {}
    try:
        keys = await kv.keys()
    except (NotFoundError, NoKeysError):  # an empty bucket: nothing has reported yet
        return out
    for key in keys:
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            continue
        if entry.value:
            with contextlib.suppress(orjson.JSONDecodeError):
                out[key] = orjson.loads(entry.value)
    return out


class StatusReporter:
    """Writes ``snapshot()`` to the status bucket every ``interval`` seconds, with a heartbeat.

    A failed write is logged and retried at the next tick: status must never stop the data."""

    def __init__(
        self,
        js: JetStreamContext,
        env: str,
        component: str,
        snapshot: Callable[[], dict[str, Any]],
        *,
        source: str,
        interval: float = 2.0,
    ) -> None:
        self._js, self._env, self._component = js, env, component
        self._snapshot, self._source, self._interval = snapshot, source, interval
        self._task: asyncio.Task[None] | None = None
        self._kv: KeyValue | None = None
        self._stopping = asyncio.Event()

    async def write_once(self) -> None:
        if self._kv is None:
            self._kv = await status_bucket(self._js, self._env)
        doc = {
            "component": self._component,
            "source": self._source,
            "heartbeat": time.time(),
            **self._snapshot(),
        }
        await self._kv.put(self._component, orjson.dumps(doc))

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.write_once()
            except Exception as exc:  # status is best effort, data is not
                log.warning("status write for %s failed: %s", self._component, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"status-{self._component}")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop, then write the final state so `ssmd status` shows a clean stop.

        An event, not cancellation: a cancel landing inside a KV put could be swallowed by
        nats-py and leave the loop running for ever."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:  # wait_for cancelled it; a stuck put must not block shutdown
                log.warning("status loop of %s did not stop in %ss", self._component, timeout)
            self._task = None
        try:
            await asyncio.wait_for(self.write_once(), timeout)
        except Exception as exc:  # the data is safe; only the last status document is missing
            log.warning("final status write for %s failed: %r", self._component, exc)
