"""The Environment's JetStream side: streams, stream statistics and the status KV.

One short-lived NATS connection per reconcile pass. An unreachable server is a condition
(``NatsUnreachable``) and a retry, never a permanent failure (NACK #193)."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.js.errors import NoKeysError, NotFoundError

from ssmd import subjects
from ssmd.spec import Environment
from ssmd.spec.types import parse_key_ref
from ssmd.transport.connect import NatsUnavailable, connect, redact_url
from ssmd.transport.kv import read_status
from ssmd.transport.streams import StreamConfigError, ensure_streams

CONNECT_TIMEOUT_S = 1.0


@dataclass
class StreamOutcome:
    ok: bool
    reason: str
    message: str
    stream: dict[str, Any] | None = None
    components: dict[str, dict[str, Any]] = field(default_factory=dict)


def credentials(env: Environment, secret: dict[str, Any] | None) -> dict[str, str]:
    """nats-py connect options from the transport key's Secret (fields token | user+password)."""
    if env.spec.transport.credentials is None or not secret:
        return {}
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    _, fld = parse_key_ref(env.spec.transport.credentials)
    if fld:
        return {"token": data[fld]} if fld in data else {}
    return {k: data[k] for k in ("token", "user", "password") if k in data}


def rename_refused(env: Environment, recorded: str | None) -> str | None:
    """A message when the spec would move the pipeline to a differently named stream."""
    wanted = subjects.stream_name(env.name, env.spec.feed.name)
    if recorded and recorded != wanted:
        return (
            f"stream {recorded} cannot be renamed to {wanted} (spec.feed.name changed): JetStream "
            f"names are immutable; set spec.feed.name back, or create a new Environment"
        )
    return None


async def _open(url: str, creds: dict[str, str]) -> Client:
    # nats-py keeps retrying a refused first connect; bound it so a pass always finishes.
    try:
        return await asyncio.wait_for(
            connect(
                url,
                name="ssmd-operator",
                connect_timeout=CONNECT_TIMEOUT_S,
                reconnect=False,
                initial_attempts=1,
                **creds,
            ),
            CONNECT_TIMEOUT_S,
        )
    except TimeoutError:
        raise NatsUnavailable(
            f"cannot reach NATS at {redact_url(url)} within {CONNECT_TIMEOUT_S:.0f}s"
        ) from None


async def reconcile_streams(env: Environment, creds: dict[str, str]) -> StreamOutcome:
    """Ensure the streams; read the main stream's state and the status documents."""
    url = env.spec.transport.url
    assert url is not None  # checked by the caller
    try:
        nc = await _open(url, creds)
    except NatsUnavailable as exc:
        return StreamOutcome(False, "NatsUnreachable", str(exc))
    try:
        js = nc.jetstream(timeout=5.0)
        try:
            await ensure_streams(js, env)
        except StreamConfigError as exc:
            return StreamOutcome(False, "StreamConfigRefused", str(exc))
        name = subjects.stream_name(env.name, env.spec.feed.name)
        info = await js.stream_info(name)
        state = info.state
        stream = {
            "name": name,
            "messages": state.messages,
            "bytes": state.bytes,
            "firstSeq": state.first_seq,
            "lastSeq": state.last_seq,
        }
        try:
            docs = await read_status(js, env.name)
        except (NotFoundError, NoKeysError):
            # read_status lets NoKeysError out for a bucket no component has written yet.
            docs = {}
        return StreamOutcome(True, "StreamsReady", f"streams of {name} in place", stream, docs)
    except (TimeoutError, ConnectionError, nats.errors.Error) as exc:
        return StreamOutcome(
            False, "NatsUnreachable", f"NATS at {redact_url(url)} stopped answering: {exc!r}"
        )
    finally:
        await nc.close()


async def delete_streams(env: Environment, creds: dict[str, str]) -> list[str]:
    """``deletePolicy: delete`` only: remove the environment's streams (their data with them)."""
    from ssmd.transport.streams import desired_streams

    url = env.spec.transport.url
    assert url is not None
    nc = await _open(url, creds)
    deleted = []
    try:
        js = nc.jetstream(timeout=5.0)
        for cfg in desired_streams(env):
            assert cfg.name is not None
            try:
                await js.delete_stream(cfg.name)
                deleted.append(cfg.name)
            except NotFoundError:
                pass
    finally:
        await nc.close()
    return deleted
