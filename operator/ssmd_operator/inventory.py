"""The archive inventory of the last 30 days, from the archiver's day manifests.

In a cluster the operator can read an S3 archive (credentials from the storage key's Secret)
but not a local one (the claim is mounted in the archiver's pod only): for local storage the
inventory comes from the archiver's status document instead (:mod:`ssmd_operator.status`)."""

from __future__ import annotations

import asyncio
import base64
from datetime import date, timedelta
from typing import Any

from ssmd.archiver.manifest import DayManifest
from ssmd.archiver.storage import ArchiveStore, S3Credentials, S3Store
from ssmd.spec import Environment
from ssmd.spec.types import parse_key_ref

DAYS = 30
TIMEOUT_S = 10.0
# Manifests of past days hardly change: cache them so a pass reads only today's.
_cache: dict[tuple[str, str, str], dict[str, Any]] = {}
_CACHE_MAX = 2000


def day_record(m: DayManifest) -> dict[str, Any]:
    gaps = len(m.gaps.get("stream", [])) + len(m.gaps.get("exchange", []))
    return {
        "date": m.date,
        "records": m.records,
        "bytes": m.bytes,
        "files": len(m.files),
        "gaps": gaps,
    }


async def from_store(store: ArchiveStore, feed: str, today: date) -> list[dict[str, Any]]:
    """Newest first, one record per day with a manifest, within the last 30 days."""
    first = (today - timedelta(days=DAYS - 1)).isoformat()
    dates = [d for d in await store.list_dates(feed) if first <= d <= today.isoformat()]
    out = []
    for d in sorted(dates, reverse=True):
        key = (store.description, feed, d)
        rec = _cache.get(key)
        if rec is None:
            m = await store.read_manifest(feed, d)
            if m is None:
                continue
            rec = day_record(m)
            if d < today.isoformat():
                if len(_cache) >= _CACHE_MAX:
                    _cache.clear()
                _cache[key] = rec
        out.append(rec)
    return out


def _secret_fields(secret: dict[str, Any] | None) -> dict[str, str]:
    if not secret:
        return {}
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


def s3_store(env: Environment, secret: dict[str, Any] | None) -> S3Store | None:
    """An S3 store for the Environment, with the storage key's Secret as credentials
    (fields access_key_id/secret_access_key or their aws_* names); None for local storage."""
    s3 = env.spec.storage.s3
    if s3 is None:
        return None
    creds = None
    if s3.credentials is not None:
        fields = {k.lower(): v for k, v in _secret_fields(secret).items()}
        key_id = next(
            (
                fields[k]
                for k in ("access_key_id", "aws_access_key_id", "access_key")
                if k in fields
            ),
            None,
        )
        secret_key = next((fields[k] for k in ("secret_access_key", "aws_secret_access_key", "secret_key") if k in fields), None)  # fmt: skip
        if key_id and secret_key:
            creds = S3Credentials(key_id, secret_key)
    return S3Store.from_spec(s3, creds)


def storage_key(env: Environment) -> str | None:
    s3 = env.spec.storage.s3
    return parse_key_ref(s3.credentials)[0] if s3 is not None and s3.credentials else None


async def from_s3(
    env: Environment, secret: dict[str, Any] | None, today: date
) -> list[dict[str, Any]]:
    store = s3_store(env, secret)
    assert store is not None
    try:
        return await asyncio.wait_for(from_store(store, env.spec.feed.name, today), TIMEOUT_S)
    finally:
        await store.close()
