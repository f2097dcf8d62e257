"""The archiver on a real S3 server (weed mini): verified uploads, and an outage mid-run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from nats.aio.client import Client
from nats.js import JetStreamContext

from ssmd.archiver import Archiver, ArchiverOptions
from ssmd.archiver.manifest import decode_line, decompress_frames, iter_lines
from ssmd.archiver.storage import S3Credentials, S3Store
from ssmd.cli.main import cli as main_cli
from ssmd.transport.server import EmbeddedNats
from ssmd.transport.streams import ensure_streams

from .archiver_support import BASE_NS, FakeClock, archive_env, ctx_for, message, publish_all
from .s3support import BUCKET, KEY, SECRET, Weed
from .support import until

pytestmark = pytest.mark.s3
MIN_NS = 60_000_000_000


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weed]:
    w = Weed(tmp_path_factory.mktemp("weed"))
    w.start()
    yield w
    w.stop()


def s3_env(weed: Weed, prefix: str) -> object:
    return archive_env(
        Path("unused"),
        storage={
            "s3": {
                "bucket": BUCKET,
                "endpoint": weed.endpoint,
                "prefix": prefix,
                "credentials": "$key:archive-s3",
            }
        },
        spec={
            "keys": {
                "archive-s3": {
                    "type": "storage",
                    "fields": ["access_key_id", "secret_access_key"],
                    "env": {
                        "access_key_id": "TEST_S3_KEY",
                        "secret_access_key": "TEST_S3_SECRET",
                    },
                }
            }
        },
        rotationInterval="1m",
    )


@pytest.fixture(autouse=True)
def s3_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_S3_KEY", KEY)
    monkeypatch.setenv("TEST_S3_SECRET", SECRET)


async def read_back(store: S3Store, feed: str, date: str) -> list[int]:
    seqs: list[int] = []
    m = await store.read_manifest(feed, date)
    assert m is not None
    for f in m.files:
        chunks = [c async for c in store.iter_compressed(feed, date, f.name)]
        content = [data for data, _ in decompress_frames(chunks, "zstd")]
        seqs.extend(decode_line(x).seq for ls in iter_lines(content) for x in ls)
    assert m.records == len(seqs)
    return seqs


async def wait_bucket(store: S3Store) -> None:
    for _ in range(100):  # the bucket is created just after weed starts answering
        try:
            await (await store.client()).head_bucket(Bucket=BUCKET)
            return
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError("bucket never appeared")


async def test_closed_files_are_uploaded_verified_and_removed_locally(
    weed: Weed, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext, tmp_path: Path
) -> None:
    env = s3_env(weed, "t1")
    await ensure_streams(js, env)  # type: ignore[arg-type]
    store = S3Store(
        BUCKET, prefix="t1", endpoint=weed.endpoint, credentials=S3Credentials(KEY, SECRET)
    )
    await wait_bucket(store)
    times = [BASE_NS + i * 20 * 1_000_000_000 for i in range(9)]  # 3 minutes → 3 files
    await publish_all(nc, [message("test", "kalshi", i, t) for i, t in enumerate(times)])
    arch = Archiver(ctx_for(env, nats_server.url, tmp_path), now=FakeClock(times[-1] / 1e9))  # type: ignore[arg-type]
    assert "secret" not in repr(arch.store).lower() and SECRET not in repr(arch.store)
    await arch.start()
    await arch.wait_until_acked(9)
    await arch.stop()  # closes the last file and uploads it
    assert not list((tmp_path / "archiver-staging").rglob("*.jsonl.zst*"))
    assert await read_back(store, "kalshi", "2026-01-01") == list(range(1, 10))
    assert await store.list_files("kalshi", "2026-01-01") == [
        "0000.jsonl.zst",
        "0001.jsonl.zst",
        "0002.jsonl.zst",
    ]
    await store.close()

    # the data tools read the same archive straight from S3
    def cli(*args: str) -> Result:
        return CliRunner(env={"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}).invoke(
            main_cli, [*args, "--root", f"s3://{BUCKET}/t1", "--s3-endpoint", weed.endpoint]
        )

    res = await asyncio.to_thread(cli, "data", "replay", "--date", "2026-01-01")
    assert res.exit_code == 0, res.output
    frames = [message("test", "kalshi", i, t)[1] for i, t in enumerate(times)]
    assert res.stdout_bytes == b"".join(f + b"\n" for f in frames)
    res = await asyncio.to_thread(cli, "data", "inventory", "--json")
    assert res.exit_code == 0, res.output
    assert '"records":9' in res.stdout and '"files":3' in res.stdout


async def test_s3_outage_during_upload_is_retried_and_loses_nothing(
    weed: Weed, nats_server: EmbeddedNats, nc: Client, js: JetStreamContext, tmp_path: Path
) -> None:
    env = s3_env(weed, "t2")
    await ensure_streams(js, env)  # type: ignore[arg-type]
    store = S3Store(
        BUCKET, prefix="t2", endpoint=weed.endpoint, credentials=S3Credentials(KEY, SECRET)
    )
    await wait_bucket(store)
    clock = FakeClock(BASE_NS / 1e9)
    opts = ArchiverOptions(upload_retry=0.1, upload_retry_max=0.5)
    arch = Archiver(ctx_for(env, nats_server.url, tmp_path), now=clock, options=opts)  # type: ignore[arg-type]
    await arch.start()
    await publish_all(nc, [message("test", "kalshi", i, BASE_NS + i) for i in range(50)])
    await arch.wait_until_acked(50)
    weed.stop()  # S3 goes away while the archiver is running
    await publish_all(
        nc, [message("test", "kalshi", i, BASE_NS + MIN_NS + i) for i in range(50, 100)]
    )
    await arch.wait_until_acked(100)  # rotation closed 0000; its upload now fails
    staged = tmp_path / "archiver-staging/test/kalshi/2026-01-01/0000.jsonl.zst"
    assert arch._uploader is not None
    uploader = arch._uploader
    await until(lambda: uploader.failures >= 2, 30, "two failed uploads while S3 is down")
    assert staged.exists()  # kept locally while S3 is down
    weed.start()
    await arch.wait_uploads()
    assert not staged.exists()
    clock.t = (BASE_NS + 3 * MIN_NS) / 1e9
    await arch.stop()
    await wait_bucket(store)
    assert await read_back(store, "kalshi", "2026-01-01") == list(range(1, 101))
    await store.close()
