"""Dead letters: frames the connector could not handle, kept with the error for replay.

A record on ``{env}.ssmd.dlq.{component}`` is JSON: the raw frame (text when it is UTF-8,
else base64 with ``frame_encoding: "base64"``), the error, the component, the connection and
the receive time. ``ssmd dlq`` lists, replays and purges them (stream ``{ENV}_DLQ``).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson


def dead_letter(
    frame: bytes,
    error: str,
    *,
    component: str,
    conn: str | None,
    recv_ns: int,
    env: str,
    feed: str | None,
    msg_id: str | None = None,
) -> bytes:
    doc: dict[str, Any] = {
        "component": component,
        "env": env,
        "feed": feed,
        "conn": conn,
        "recv_ns": recv_ns,
        "error": error,
        "msg_id": msg_id,
    }
    try:
        doc["frame"] = frame.decode("utf-8")
        doc["frame_encoding"] = "utf-8"
    except UnicodeDecodeError:
        doc["frame"] = base64.b64encode(frame).decode("ascii")
        doc["frame_encoding"] = "base64"
    return orjson.dumps(doc)


def frame_of(doc: dict[str, Any]) -> bytes:
    """The raw frame bytes of a dead-letter document."""
    raw = doc.get("frame", "")
    if not isinstance(raw, str):
        raise ValueError("dead letter has no frame")
    if doc.get("frame_encoding") == "base64":
        return base64.b64decode(raw)
    return raw.encode("utf-8")
