"""Connecting to NATS the same way from every component."""

from __future__ import annotations

import logging
from typing import Any

import nats
from nats.aio.client import Client

log = logging.getLogger("ssmd.nats")


class NatsUnavailable(ConnectionError):
    """NATS could not be reached. The message names the URL (never credentials)."""


def redact_url(url: str) -> str:
    """``nats://user:pass@host:4222`` → ``nats://***@host:4222``."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


async def connect(
    url: str,
    *,
    name: str = "ssmd",
    token: str | None = None,
    user: str | None = None,
    password: str | None = None,
    connect_timeout: float = 5.0,
    reconnect: bool = True,
    initial_attempts: int = 3,
    **kwargs: Any,
) -> Client:
    """Connect, trying ``initial_attempts`` times, then reconnect forever once connected
    (a component outlives NATS restarts). Events are logged; credentials never are."""

    async def on_error(exc: Exception) -> None:
        log.warning("nats error: %s", exc)

    client_ref: list[Client] = []

    async def on_disconnect() -> None:
        # nats-py calls this on a deliberate close() too: only an unplanned loss is a warning
        if client_ref and (client_ref[0].is_closed or client_ref[0].is_draining):
            log.debug("nats connection to %s closed", redact_url(url))
        else:
            log.warning("nats disconnected from %s", redact_url(url))

    async def on_reconnect() -> None:
        log.info("nats reconnected to %s", redact_url(url))

    try:
        client = await nats.connect(
            servers=[url],
            name=name,
            token=token,
            user=user,
            password=password,
            connect_timeout=connect_timeout,
            allow_reconnect=reconnect,
            # nats-py uses one setting for the first connect and for reconnects: bound the
            # first so a wrong URL fails clearly, then lift it below.
            # (0 means "unlimited" inside nats-py's server selection, so at least 1).
            max_reconnect_attempts=max(initial_attempts - 1, 1),
            reconnect_time_wait=0.5,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            **kwargs,
        )
    except Exception as exc:  # nats-py raises several unrelated types here
        raise NatsUnavailable(
            f"cannot reach NATS at {redact_url(url)}: {exc.__class__.__name__} {exc}".strip()
        ) from None
    client_ref.append(client)
    if reconnect:
        client.options["max_reconnect_attempts"] = -1
    return client
