"""``ssmd data``: inventory, gaps, quality, replay and export of archived days.

The archive is the Environment's storage (``--env``), or ``--root`` (a directory or
``s3://bucket/prefix`` with ``--s3-endpoint`` and AWS_* credentials)."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from ssmd.cli.errors import UserError

T = TypeVar("T")


def _store_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--env",
        "env_file",
        type=click.Path(path_type=Path),
        help="Environment YAML (its storage is read).",
    )(f)
    f = click.option("--root", help="Archive root: a directory or s3://bucket/prefix.")(f)
    f = click.option("--s3-endpoint", help="S3-compatible endpoint URL for an s3:// root.")(f)
    return f


def _run(coro: Coroutine[Any, Any, T]) -> T:
    from ssmd.archiver.manifest import ArchiveFormatError
    from ssmd.archiver.storage import StorageError
    from ssmd.data.archive import NoData

    try:
        return asyncio.run(coro)
    except (NoData, StorageError, ArchiveFormatError) as exc:
        raise UserError(str(exc)) from None


async def _open(env_file: Path | None, root: str | None, s3_endpoint: str | None) -> Any:
    from ssmd.data.archive import open_store
    from ssmd.spec.loader import SpecError, load_environment

    env = None
    if env_file is not None:
        try:
            env = load_environment(env_file)
        except SpecError as exc:
            raise UserError(str(exc)) from None
    return open_store(env, root, s3_endpoint), env


def _default_feed(env: Any, feed: str | None) -> str | None:
    return feed or (env.spec.feed.name if env is not None else None)


def _progress(total: int, label: str) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


@click.group()
def data() -> None:
    """Inspect, replay and export archived data."""


@data.command()
@_store_options
@click.option("--feed")
@click.option("--from", "date_from", help="First date (YYYY-MM-DD).")
@click.option("--to", "date_to", help="Last date (YYYY-MM-DD).")
@click.option(
    "--status", type=click.Choice(["complete", "partial"]), help="Only days with this status."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def inventory(
    env_file: Path | None,
    root: str | None,
    s3_endpoint: str | None,
    feed: str | None,
    date_from: str | None,
    date_to: str | None,
    status: str | None,
    as_json: bool,
) -> None:
    """One row per archived day: size, records, files, gaps, status, quality.

    status is 'partial' when the day has gaps or files still being written; quality is the
    manifest-only score (`ssmd data quality` reads the files for the full one)."""

    async def main() -> list[dict[str, Any]]:
        from ssmd.data.archive import has_open_files
        from ssmd.data.quality import manifest_quality

        store, env = await _open(env_file, root, s3_endpoint)
        try:
            chosen = _default_feed(env, feed)
            feeds: list[str] = [chosen] if chosen else await store.list_feeds()
            rows = []
            for fd in feeds:
                for date in await store.list_dates(fd):
                    if (date_from and date < date_from) or (date_to and date > date_to):
                        continue
                    m = await store.read_manifest(fd, date)
                    if m is None:
                        continue
                    open_ = await has_open_files(store, fd, date)
                    st = "partial" if (m.has_gaps or open_) else "complete"
                    if status and st != status:
                        continue
                    rows.append(
                        {
                            "feed": fd,
                            "date": date,
                            "bytes": m.bytes,
                            "records": m.records,
                            "files": len(m.files),
                            "gaps": len(m.gaps["stream"]) + len(m.gaps["exchange"]),
                            "status": st,
                            "quality": manifest_quality(m).score,
                            "source": m.source,
                        }
                    )
            return rows
        finally:
            await store.close()

    rows = _run(main())
    if as_json:
        click.echo(orjson.dumps(rows).decode())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("feed", "date", "size", "records", "files", "gaps", "status", "quality", "source")
    for r in rows:
        table.add_row(
            r["feed"], r["date"], _size(r["bytes"]), f"{r['records']:,}", str(r["files"]),
            str(r["gaps"]), r["status"], f"{r['quality']:.3f}", r["source"],
        )  # fmt: skip
    # piped output keeps whole rows (no wrapping at 80 columns)
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024  # type: ignore[assignment]
    return str(n)


@data.command()
@_store_options
@click.option("--feed")
@click.option("--date", required=True)
@click.option("--json", "as_json", is_flag=True)
def gaps(
    env_file: Path | None,
    root: str | None,
    s3_endpoint: str | None,
    feed: str | None,
    date: str,
    as_json: bool,
) -> None:
    """Stream gaps (missing JetStream sequences) and exchange gaps of one day."""

    async def main() -> Any:
        from ssmd.data.archive import day_manifest, pick_feed

        store, env = await _open(env_file, root, s3_endpoint)
        try:
            fd = await pick_feed(store, _default_feed(env, feed))
            return await day_manifest(store, fd, date)
        finally:
            await store.close()

    m = _run(main())
    if as_json:
        click.echo(orjson.dumps(m.gaps).decode())
        return
    if not m.has_gaps:
        click.echo(f"{m.feed} {m.date}: no gaps")
        return
    for g in m.gaps["stream"]:
        click.echo(f"stream    seq {g['from_seq']}..{g['to_seq']} ({g['count']} messages missing)")
    for g in m.gaps["exchange"]:
        click.echo(
            f"exchange  {g.get('cause', '?')} conn={g.get('conn')} sid={g.get('sid')} "
            f"expected={g.get('expected_seq')} received={g.get('received_seq')} "
            f"markets={len(g.get('markets') or [])} (archive seq {g.get('seq')})"
        )


@data.command()
@_store_options
@click.option("--feed")
@click.option("--date", required=True)
@click.option(
    "--nats-url",
    default=None,
    help="NATS URL for the dead-letter count (default with --env: $SSMD_NATS_URL, "
    "spec.transport.url, or the running `ssmd up`).",
)
@click.option("--json", "as_json", is_flag=True)
def quality(
    env_file: Path | None,
    root: str | None,
    s3_endpoint: str | None,
    feed: str | None,
    date: str,
    nats_url: str | None,
    as_json: bool,
) -> None:
    """Dead letters, gaps and their duration, out-of-order timestamps, duplicates, score.

    Dead letters are frames in the archive that are not valid JSON plus, when NATS is
    reachable (--env or --nats-url), the day's entries in the {ENV}_DLQ stream."""

    async def main() -> Any:
        from ssmd.data.archive import day_manifest, pick_feed
        from ssmd.data.quality import day_quality, score

        store, env = await _open(env_file, root, s3_endpoint)
        try:
            fd = await pick_feed(store, _default_feed(env, feed))
            m = await day_manifest(store, fd, date)
            q = await day_quality(store, fd, m)
        finally:
            await store.close()
        url = _quality_nats_url(env, env_file, nats_url)
        if env is None or url is None:
            q.details["dlq"] = "not checked: give --env with a reachable NATS, or --nats-url"
            return q
        n = await _dlq_count(url, env.name, date)
        q.details["dlq"] = n
        q.dead_letters += n
        q.score = score(q)
        return q

    q = _run(main())
    if as_json:
        click.echo(orjson.dumps(q.to_dict()).decode())
        return
    for k, v in q.to_dict().items():
        if k not in ("details", "formula"):
            click.echo(f"{k:>14}: {v}")
    click.echo(f"{'how':>14}: {q.formula}")


def _quality_nats_url(env: Any, env_file: Path | None, nats_url: str | None) -> str | None:
    if nats_url:
        return nats_url
    if env is None or env_file is None:
        return None
    from ssmd.cli.component_cli import nats_url_for

    try:
        return nats_url_for(env, env_file, None)
    except click.ClickException:
        return None


def _dead_letter_date(msg: Any) -> str | None:
    """The day the dead frame was received (its ``recv_ns``), else when it was dead-lettered."""
    import datetime as dt

    try:
        recv_ns = orjson.loads(msg.data or b"{}").get("recv_ns")
    except (orjson.JSONDecodeError, AttributeError):
        recv_ns = None
    if isinstance(recv_ns, int):
        return dt.datetime.fromtimestamp(recv_ns / 1e9, dt.UTC).strftime("%Y-%m-%d")
    return msg.time.strftime("%Y-%m-%d") if msg.time is not None else None


async def _dlq_count(url: str, env_name: str, date: str) -> int:
    """Dead letters the {ENV}_DLQ stream holds for ``date`` (UTC)."""
    from ssmd.cli.dlq import iter_dead_letters
    from ssmd.transport.connect import NatsUnavailable, connect

    try:
        nc = await connect(url, name="ssmd-data", reconnect=False, initial_attempts=1)
    except NatsUnavailable as exc:
        raise UserError(f"dead-letter count: {exc}") from None
    n = 0
    try:
        try:
            async for msg in iter_dead_letters(nc.jetstream(), env_name):
                if _dead_letter_date(msg) == date:
                    n += 1
        except UserError:
            return 0  # no DLQ stream: nothing was ever dead-lettered
    finally:
        await nc.close()
    return n


def _speed(value: str) -> float | None:
    if value == "max":
        return None
    try:
        s = float(value)
    except ValueError:
        raise click.BadParameter("use a number (1 = original pacing) or 'max'") from None
    if s <= 0:
        raise click.BadParameter("must be greater than 0, or 'max'")
    return s


@data.command()
@_store_options
@click.option("--feed")
@click.option("--date", required=True)
@click.option("--ticker", help="Only this market.")
@click.option(
    "--type",
    "mtype",
    type=click.Choice(["trade", "ticker", "orderbook", "lifecycle", "control", "gap"]),
)
@click.option(
    "--speed", default="max", show_default=True, help="N times the original pacing, or max."
)
@click.option(
    "--to-nats", "prefix", help="Republish to SUBJECT_PREFIX.<original subject> instead of stdout."
)
@click.option("--nats-url", help="NATS URL for --to-nats (default: spec.transport.url).")
def replay(
    env_file: Path | None,
    root: str | None,
    s3_endpoint: str | None,
    feed: str | None,
    date: str,
    ticker: str | None,
    mtype: str | None,
    speed: str,
    prefix: str | None,
    nats_url: str | None,
) -> None:
    """Frames of one day, byte-identical, in stream order (stdout: one per line)."""
    pace = _speed(speed)

    async def main() -> int:
        from ssmd.data.archive import day_manifest, pick_feed
        from ssmd.data.replay import ReplayFilter, replay_day

        store, env = await _open(env_file, root, s3_endpoint)
        nc = None
        try:
            fd = await pick_feed(store, _default_feed(env, feed))
            m = await day_manifest(store, fd, date)
            publish: Callable[[str, bytes, int], Awaitable[None]] | None = None
            if prefix:
                from ssmd.transport.connect import NatsUnavailable, connect

                url = nats_url or (env.spec.transport.url if env is not None else None)
                if not url:
                    raise UserError("--to-nats needs --nats-url (or spec.transport.url)")
                try:
                    nc = await connect(url, name="ssmd-data-replay", reconnect=False)
                except NatsUnavailable as exc:
                    raise UserError(str(exc)) from None
                client = nc

                async def republish(subject: str, frame: bytes, recv_ns: int) -> None:
                    # a replay goes under its own prefix so it is never mistaken for live data
                    await client.publish(
                        f"{prefix}.{subject}", frame, headers={"Ssmd-Recv-Ns": str(recv_ns)}
                    )

                publish = republish

            out = sys.stdout.buffer
            with _progress(m.records, f"replay {fd} {date}") as bar:
                task = bar.add_task("replay", total=m.records)
                n = await replay_day(
                    store, fd, m, out=None if publish else out, publish=publish,
                    flt=ReplayFilter(ticker=ticker, mtype=mtype), speed=pace,
                    on_progress=functools.partial(bar.advance, task),
                )  # fmt: skip
            out.flush()
            if nc is not None:
                await nc.flush()
            return n
        finally:
            if nc is not None:
                await nc.close()
            await store.close()

    _run(main())


@data.command()
@_store_options
@click.option("--feed")
@click.option("--date", required=True)
@click.option(
    "--format", "fmt", type=click.Choice(["parquet"]), default="parquet", show_default=True
)
@click.option(
    "--out", type=click.Path(path_type=Path), help="Output file (default FEED-DATE.parquet)."
)
def export(
    env_file: Path | None,
    root: str | None,
    s3_endpoint: str | None,
    feed: str | None,
    date: str,
    fmt: str,
    out: Path | None,
) -> None:
    """One row per message with typed columns (pyarrow Parquet)."""

    async def main() -> tuple[Path, int]:
        from ssmd.data.archive import day_manifest, pick_feed
        from ssmd.data.export import export_day

        store, env = await _open(env_file, root, s3_endpoint)
        try:
            fd = await pick_feed(store, _default_feed(env, feed))
            m = await day_manifest(store, fd, date)
            path = out or Path(f"{fd}-{date}.parquet")
            with _progress(m.records, f"export {fd} {date}") as bar:
                task = bar.add_task("export", total=m.records)
                try:
                    n = await export_day(
                        store, fd, m, path, on_progress=functools.partial(bar.advance, task)
                    )
                except OSError as exc:
                    raise UserError(f"cannot write {path}: {exc.strerror}") from None
            return path, n
        finally:
            await store.close()

    path, n = _run(main())
    click.echo(f"wrote {n:,} rows to {path}", err=True)
