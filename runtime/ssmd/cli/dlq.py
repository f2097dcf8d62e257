"""``ssmd dlq list|replay|purge``: the dead letters in stream ``{ENV}_DLQ``.

Ids are stream sequences. ``replay`` republishes a dead frame to the subject it would have
had (after a fix made it parseable) and removes it from the DLQ unless ``--keep``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from ssmd.cli.errors import UserError

T = TypeVar("T")


def _target_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--name", default=None, help="Environment name (with --nats-url).")(fn)
    fn = click.option(
        "--nats-url",
        default=None,
        help="NATS URL (default: $SSMD_NATS_URL, then spec.transport.url).",
    )(fn)
    return click.option(
        "--env", "env_file", type=click.Path(path_type=Path), default=None, help="Environment YAML."
    )(fn)


def _resolve(env_file: Path | None, nats_url: str | None, name: str | None) -> tuple[str, str, str]:
    """(nats url, env name, default feed)."""
    from ssmd.cli.status import _target

    url, env_name = _target(env_file, nats_url, name)
    feed = "kalshi"
    if env_file is not None:
        from ssmd.cli.component_cli import load_env

        feed = load_env(env_file).spec.feed.name
    return url, env_name, feed


def _duration(value: str, opt: str) -> dt.timedelta:
    from ssmd.spec.types import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UserError(f"{opt}: {exc}") from None


def _run(url: str, fn: Callable[[Any], Awaitable[T]]) -> T:
    from ssmd.transport.connect import NatsUnavailable, connect

    async def main() -> T:
        nc = await connect(url, name="ssmd-dlq", reconnect=False, initial_attempts=1)
        try:
            return await fn(nc.jetstream())
        finally:
            await nc.close()

    try:
        return asyncio.run(main())
    except NatsUnavailable as exc:
        raise UserError(str(exc)) from None


async def iter_dead_letters(js: Any, env: str, component: str | None = None) -> AsyncIterator[Any]:
    """Every DLQ message (``RawStreamMsg``), oldest first."""
    from nats.js.errors import NotFoundError

    from ssmd import subjects

    stream = subjects.dlq_stream_name(env)
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        raise UserError(f"stream {stream} does not exist (has environment {env!r} run?)") from None
    subject = subjects.dlq_subject(env, component) if component else None
    seq, last = info.state.first_seq, info.state.last_seq
    while seq and seq <= last:
        try:
            msg = await js.get_msg(stream, seq, subject=subject, next=True)
        except NotFoundError:
            return
        yield msg
        seq = (msg.seq or seq) + 1


def _row(msg: Any) -> dict[str, Any]:
    try:
        doc = orjson.loads(msg.data or b"{}")
    except orjson.JSONDecodeError:
        doc = {
            "error": "(not a dead-letter document)",
            "frame": (msg.data or b"")[:200].decode(errors="replace"),
        }
    return {
        "id": msg.seq,
        "time": msg.time.isoformat() if msg.time else None,
        "subject": msg.subject,
        "component": doc.get("component"),
        "conn": doc.get("conn"),
        "error": doc.get("error"),
        "frame": doc.get("frame"),
    }


@click.group()
def dlq() -> None:
    """List, replay and purge dead letters (frames a component could not handle)."""


@dlq.command("list")
@_target_options
@click.option(
    "--component", default=None, help="Only this component's dead letters (e.g. connector)."
)
@click.option("--since", default=None, help="Only the last DURATION (e.g. 1h, 30m, 7d).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def list_(
    env_file: Path | None,
    nats_url: str | None,
    name: str | None,
    component: str | None,
    since: str | None,
    as_json: bool,
) -> None:
    """List dead letters, oldest first."""
    url, env_name, _ = _resolve(env_file, nats_url, name)
    cutoff = dt.datetime.now(dt.UTC) - _duration(since, "--since") if since else None

    async def go(js: Any) -> list[dict[str, Any]]:
        rows = []
        async for msg in iter_dead_letters(js, env_name, component):
            if cutoff is not None and msg.time is not None and msg.time < cutoff:
                continue
            rows.append(_row(msg))
        return rows

    rows = _run(url, go)
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, sort_keys=True))
        return
    if not rows:
        click.echo("no dead letters")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"dead letters of {env_name}")
    for col in ("id", "time", "component", "conn", "error", "frame"):
        table.add_column(col, overflow="fold")
    for r in rows:
        frame = str(r["frame"] or "")
        table.add_row(
            str(r["id"]),
            str(r["time"]),
            str(r["component"]),
            str(r["conn"]),
            str(r["error"]),
            frame[:80],
        )
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # piped: do not squeeze the table into 80 columns
    console.print(table)


@dlq.command()
@_target_options
@click.option(
    "--id", "msg_id", type=int, required=True, help="The dead letter's id (from `ssmd dlq list`)."
)
@click.option("--keep", is_flag=True, help="Keep it in the DLQ after republishing.")
def replay(
    env_file: Path | None, nats_url: str | None, name: str | None, msg_id: int, keep: bool
) -> None:
    """Republish dead letter ID to its subject (after a fix made it parseable)."""
    from nats.js.errors import NotFoundError

    from ssmd import subjects
    from ssmd.connector.dlq import frame_of
    from ssmd.feeds.kalshi import messages as m

    url, env_name, default_feed = _resolve(env_file, nats_url, name)
    stream = subjects.dlq_stream_name(env_name)

    async def go(js: Any) -> str:
        try:
            msg = await js.get_msg(stream, msg_id)
        except NotFoundError:
            raise UserError(f"no dead letter with id {msg_id} in {stream}") from None
        try:
            doc = orjson.loads(msg.data or b"")
            frame = frame_of(doc)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            raise UserError(f"dead letter {msg_id} is not a dead-letter document") from None
        try:
            env = m.decode_envelope(frame)
        except m.FrameParseError as exc:
            raise UserError(
                f"dead letter {msg_id} still does not parse ({exc}); nothing replayed"
            ) from None
        if env.type not in m.KNOWN_FRAME_TYPES:
            raise UserError(
                f"frame type {env.type!r} is still unknown to this ssmd; nothing replayed"
            )
        feed = doc.get("feed") or default_feed
        subject = subjects.json_subject(
            env_name, feed, subjects.frame_type_for(env.type), env.market_ticker
        )
        headers = {
            "Nats-Msg-Id": f"dlq-replay:{stream}:{msg_id}",
            "Ssmd-Recv-Ns": str(doc.get("recv_ns") or 0),
            "Ssmd-Conn": str(doc.get("conn") or "dlq-replay"),
        }
        ack = await js.publish(subject, frame, headers=headers)
        if not keep:
            await js.delete_msg(stream, msg_id)
        return f"replayed dead letter {msg_id} to {subject} (stream {ack.stream} seq {ack.seq})" + (
            "" if keep else "; removed from the DLQ"
        )

    click.echo(_run(url, go))


@dlq.command()
@_target_options
@click.option(
    "--older-than",
    "older_than",
    required=True,
    help="Purge dead letters older than DURATION (e.g. 7d).",
)
@click.option("--component", default=None, help="Only this component's dead letters.")
def purge(
    env_file: Path | None,
    nats_url: str | None,
    name: str | None,
    older_than: str,
    component: str | None,
) -> None:
    """Delete dead letters older than a duration."""
    from ssmd import subjects

    url, env_name, _ = _resolve(env_file, nats_url, name)
    cutoff = dt.datetime.now(dt.UTC) - _duration(older_than, "--older-than")
    stream = subjects.dlq_stream_name(env_name)

    async def go(js: Any) -> int:
        first_keep: int | None = None
        old = 0
        async for msg in iter_dead_letters(js, env_name, component):
            if msg.time is not None and msg.time >= cutoff:
                first_keep = msg.seq
                break
            old += 1
        if old == 0:
            return 0
        info = await js.stream_info(stream)
        upto = first_keep if first_keep is not None else info.state.last_seq + 1
        subject = subjects.dlq_subject(env_name, component) if component else None
        await js.purge_stream(stream, seq=upto, subject=subject)
        return old

    n = _run(url, go)
    click.echo(f"purged {n} dead letter(s) older than {older_than}")
