"""Reading an archive (local directory or S3) day by day, in stream order."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

from ssmd.archiver.manifest import (
    ArchiveFormatError,
    DayManifest,
    FrameDecoder,
    format_of,
    is_date,
    is_partial,
)
from ssmd.archiver.storage import ArchiveStore, LocalStore, S3Credentials, S3Store, store_for
from ssmd.spec.environment import Environment


class NoData(LookupError):
    """The requested feed/date is not in the archive; the message says what is."""


def open_store(
    env: Environment | None, root: str | None, s3_endpoint: str | None = None
) -> ArchiveStore:
    """``--root PATH`` or ``--root s3://bucket/prefix`` wins over the Environment's storage."""
    if root:
        if root.startswith("s3://"):
            bucket, _, prefix = root[5:].partition("/")
            creds = None
            if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
                creds = S3Credentials(
                    os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
                )
            return S3Store(bucket, prefix=prefix, endpoint=s3_endpoint, credentials=creds)
        return LocalStore(Path(root))
    if env is None:
        return LocalStore(Path("./data/archive"))
    return store_for(env)


async def pick_feed(store: ArchiveStore, feed: str | None) -> str:
    if feed:
        return feed
    feeds = await store.list_feeds()
    if len(feeds) == 1:
        return feeds[0]
    if not feeds:
        raise NoData(f"no archived data under {store.description}")
    raise NoData(f"several feeds under {store.description} ({', '.join(feeds)}): pass --feed")


async def day_manifest(store: ArchiveStore, feed: str, date: str) -> DayManifest:
    if not is_date(date):
        raise NoData(f"{date!r} is not a date (YYYY-MM-DD)")
    m = await store.read_manifest(feed, date)
    if m is None or not m.files:
        dates = await store.list_dates(feed)
        latest = f"latest is {dates[-1]}" if dates else f"there is no data for {feed} at all"
        raise NoData(f"no data for {feed} on {date}; {latest}")
    return m


async def has_open_files(store: ArchiveStore, feed: str, date: str) -> bool:
    return any(is_partial(n) for n in await store.list_files(feed, date))


async def iter_day_chunks(
    store: ArchiveStore, feed: str, m: DayManifest
) -> AsyncIterator[tuple[str, bytes]]:
    """(file name, decompressed chunk of whole lines) for every file of the day, in stream
    order (files by first sequence; lines inside a file are in sequence order)."""
    for f in sorted(m.files, key=lambda f: f.nats_start_seq):
        dec = FrameDecoder(format_of(f.name))
        async for comp in store.iter_compressed(feed, m.date, f.name):
            for content in dec.feed(comp):
                yield f.name, content
        if dec.torn:
            raise ArchiveFormatError(f"{feed}/{m.date}/{f.name} is damaged (torn or corrupt frame)")
