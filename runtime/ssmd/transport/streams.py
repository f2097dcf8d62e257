"""Ensure the JetStream streams of an Environment exist with the configured limits.

Idempotent: creates what is missing, updates limits JetStream allows to change, and refuses
a change it cannot make with an error naming the Environment field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from ssmd import subjects
from ssmd.spec.environment import Environment, StreamSettings
from ssmd.spec.types import duration_seconds, parse_size


class StreamConfigError(ValueError):
    """The spec asks for a stream change JetStream cannot make."""


Action = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class StreamResult:
    name: str
    action: Action


def desired_streams(env: Environment) -> list[StreamConfig]:
    """The three streams of the design, from the Environment."""
    name, feed = env.name, env.spec.feed.name
    s: StreamSettings = env.spec.transport.stream
    storage = StorageType.FILE if s.storage == "file" else StorageType.MEMORY
    main = StreamConfig(
        name=subjects.stream_name(name, feed),
        description=f"ssmd {name}/{feed}: raw exchange frames, gaps, metadata events",
        # {env}.{feed}.> minus book.>: listed explicitly, a stream cannot subtract.
        subjects=[
            subjects.json_wildcard(name, feed),
            subjects.gap_subject(name, feed),
            subjects.meta_wildcard(name, feed),
        ],
        retention=RetentionPolicy.LIMITS,
        storage=storage,
        discard=DiscardPolicy.OLD,
        max_age=duration_seconds(s.max_age),
        max_bytes=parse_size(s.max_bytes),
        max_msg_size=parse_size(s.max_msg_size),
        duplicate_window=duration_seconds(s.duplicate_window),
        num_replicas=s.replicas,
    )
    books = StreamConfig(
        name=subjects.books_stream_name(name, feed),
        description=f"ssmd {name}/{feed}: latest order-book checkpoint per market",
        subjects=[subjects.book_wildcard(name, feed)],
        retention=RetentionPolicy.LIMITS,
        storage=storage,
        discard=DiscardPolicy.OLD,
        max_msgs_per_subject=1,
        max_age=duration_seconds(s.books_max_age),
        max_msg_size=parse_size(s.max_msg_size),
        num_replicas=s.replicas,
        allow_direct=True,
    )
    dlq = StreamConfig(
        name=subjects.dlq_stream_name(name),
        description=f"ssmd {name}: dead letters (frames a component could not handle)",
        subjects=[subjects.dlq_wildcard(name)],
        retention=RetentionPolicy.LIMITS,
        storage=storage,
        discard=DiscardPolicy.OLD,
        max_age=duration_seconds(s.dlq_max_age),
        num_replicas=s.replicas,
    )
    return [main, books, dlq]


# Stream config attribute -> the Environment field a person would change.
_FIELD_OF = {
    "storage": "spec.transport.stream.storage",
    "max_age": "spec.transport.stream.maxAge",
    "max_bytes": "spec.transport.stream.maxBytes",
    "max_msg_size": "spec.transport.stream.maxMsgSize",
    "duplicate_window": "spec.transport.stream.duplicateWindow",
    "num_replicas": "spec.transport.stream.replicas",
    "subjects": "metadata.name / spec.feed.name",
    "retention": "(retention is fixed by ssmd)",
    "max_msgs_per_subject": "(fixed by ssmd)",
}
_COMPARED = (
    "subjects",
    "retention",
    "storage",
    "discard",
    "max_age",
    "max_bytes",
    "max_msg_size",
    "duplicate_window",
    "num_replicas",
    "max_msgs_per_subject",
)
# JetStream refuses to change these on an existing stream.
_IMMUTABLE = ("storage", "retention")


def _norm(attr: str, value: object) -> object:
    if value is None:
        return {"max_msgs_per_subject": -1, "max_bytes": -1, "max_msg_size": -1}.get(attr, value)
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, list):
        return sorted(value)
    return value


def diff_config(current: StreamConfig, desired: StreamConfig) -> dict[str, tuple[object, object]]:
    out = {}
    for attr in _COMPARED:
        a, b = _norm(attr, getattr(current, attr)), _norm(attr, getattr(desired, attr))
        if attr == "duplicate_window" and b in (0, None):
            continue
        if a != b:
            out[attr] = (a, b)
    return out


async def ensure_stream(js: JetStreamContext, desired: StreamConfig) -> StreamResult:
    assert desired.name is not None
    try:
        info = await js.stream_info(desired.name)
    except NotFoundError:
        try:
            await js.add_stream(desired)
        except APIError as exc:
            raise StreamConfigError(_explain(desired.name, exc)) from None
        return StreamResult(desired.name, "created")
    changes = diff_config(info.config, desired)
    if not changes:
        return StreamResult(desired.name, "unchanged")
    frozen = [a for a in _IMMUTABLE if a in changes]
    if frozen:
        a = frozen[0]
        old, new = changes[a]
        raise StreamConfigError(
            f"stream {desired.name}: {_FIELD_OF[a]} cannot change from {_show(old)} to "
            f"{_show(new)} on an existing stream; keep {_show(old)}, or delete the stream "
            "(its data goes with it) and let ssmd create it again"
        )
    try:
        await js.update_stream(desired)
    except APIError as exc:
        raise StreamConfigError(_explain(desired.name, exc, changes)) from None
    return StreamResult(desired.name, "updated")


def _show(v: object) -> str:
    return getattr(v, "value", None) or str(v)


def _explain(
    name: str, exc: APIError, changes: dict[str, tuple[object, object]] | None = None
) -> str:
    desc = getattr(exc, "description", None) or str(exc)
    fields = ", ".join(_FIELD_OF.get(a, a) for a in (changes or {}))
    if "replicas" in desc.lower():
        fields = _FIELD_OF["num_replicas"]
    hint = f" (check {fields})" if fields else ""
    return f"stream {name}: JetStream refused the configuration: {desc}{hint}"


async def ensure_streams(js: JetStreamContext, env: Environment) -> list[StreamResult]:
    return [await ensure_stream(js, cfg) for cfg in desired_streams(env)]


async def stream_for_subject(js: JetStreamContext, subject: str) -> str | None:
    try:
        return await js.find_stream_name_by_subject(subject)
    except NotFoundError:
        return None


async def verify_captured(js: JetStreamContext, subject_list: list[str], stream: str) -> None:
    """Fail loudly if a subject a component will publish is not captured by ``stream``:
    a publish to an uncaptured subject is lost (lessons.md: 1,856 lifecycle messages)."""
    for subj in subject_list:
        found = await stream_for_subject(js, subj)
        if found != stream:
            where = f"stream {found}" if found else "no stream"
            raise StreamConfigError(f"subject {subj} is captured by {where}, expected {stream}")
