"""Where archive files live: a local directory, or any S3-compatible store (aioboto3).

Both expose the same read side (``ssmd data`` uses it); S3 adds a verified upload used by the
archiver, which stages files locally and removes a local copy only once the object is
confirmed (same size, same MD5 as sent)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ssmd.archiver.manifest import (
    MANIFEST,
    DayManifest,
    is_archive_file,
    is_date,
    is_partial,
    object_key,
)
from ssmd.spec.environment import Environment, S3Storage
from ssmd.spec.types import parse_key_ref

log = logging.getLogger("ssmd.archiver.storage")


class StorageError(RuntimeError):
    """Storage is unreachable or misconfigured; the message never holds credentials."""


class ArchiveStore(Protocol):
    description: str

    async def list_feeds(self) -> list[str]: ...

    async def list_dates(self, feed: str) -> list[str]: ...

    async def read_manifest(self, feed: str, date: str) -> DayManifest | None: ...

    async def list_files(self, feed: str, date: str) -> list[str]: ...

    def iter_compressed(self, feed: str, date: str, name: str) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.description = str(self.root)

    async def list_feeds(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    async def list_dates(self, feed: str) -> list[str]:
        d = self.root / feed
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if p.is_dir() and is_date(p.name))

    async def read_manifest(self, feed: str, date: str) -> DayManifest | None:
        try:
            return DayManifest.from_json((self.root / feed / date / MANIFEST).read_bytes())
        except FileNotFoundError:
            return None

    async def list_files(self, feed: str, date: str) -> list[str]:
        d = self.root / feed / date
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir() if is_archive_file(p.name) or is_partial(p.name))

    async def iter_compressed(self, feed: str, date: str, name: str) -> AsyncIterator[bytes]:
        with (self.root / feed / date / name).open("rb") as f:
            while chunk := f.read(1 << 20):
                yield chunk

    async def close(self) -> None:
        return None


@dataclass
class S3Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)

    def __repr__(self) -> str:  # never show the secret
        return f"S3Credentials(access_key_id={self.access_key_id[:4]}***)"


def resolve_s3_credentials(env: Environment) -> S3Credentials | None:
    """Credentials for ``spec.storage.s3.credentials: $key:NAME`` on a local run: the key's
    ``env``/``fileEnv`` sources name the variables holding them (on Kubernetes the operator
    mounts the same variables). None means the default AWS chain (AWS_* variables, profile)."""
    s3 = env.spec.storage.s3
    if s3 is None or s3.credentials is None:
        return None
    name, _ = parse_key_ref(s3.credentials)
    req = env.spec.keys[name]

    def value(candidates: tuple[str, ...], default_var: str) -> str:
        for fld in req.fields:
            if fld.lower() in candidates:
                if fld in req.env and os.environ.get(req.env[fld]):
                    return os.environ[req.env[fld]]
                if fld in req.file_env and os.environ.get(req.file_env[fld]):
                    path = os.environ[req.file_env[fld]]
                    try:
                        return Path(path).read_text().strip()
                    except OSError as exc:
                        raise StorageError(
                            f"key {name}: cannot read the file named by ${req.file_env[fld]}: "
                            f"{exc.strerror}"
                        ) from None
        if os.environ.get(default_var):
            return os.environ[default_var]
        raise StorageError(
            f"key {name} has no value for the S3 {candidates[0]}: set the variable named in "
            f"spec.keys.{name}.env, or {default_var}"
        )

    return S3Credentials(
        value(("access_key_id", "access_key", "aws_access_key_id"), "AWS_ACCESS_KEY_ID"),
        value(
            ("secret_access_key", "secret_key", "aws_secret_access_key"), "AWS_SECRET_ACCESS_KEY"
        ),
    )


def _is_not_found(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("NoSuchKey", "404", "NotFound")


class S3Store:
    """An S3 bucket (and key prefix) holding the archive layout."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint: str | None = None,
        region: str = "us-east-1",
        credentials: S3Credentials | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        self.region = region
        self._credentials = credentials
        self._timeouts = (connect_timeout, read_timeout)
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self.description = f"s3://{bucket}/{self.prefix}".rstrip("/")

    @classmethod
    def from_spec(cls, s3: S3Storage, credentials: S3Credentials | None) -> S3Store:
        return cls(
            s3.bucket,
            prefix=s3.prefix,
            endpoint=s3.endpoint,
            region=s3.region,
            credentials=credentials,
        )

    def __repr__(self) -> str:
        return f"S3Store({self.description}, endpoint={self.endpoint})"

    async def client(self) -> Any:
        if self._client is None:
            import aioboto3
            from botocore.config import Config

            session = aioboto3.Session()
            kwargs: dict[str, Any] = {"region_name": self.region}
            if self.endpoint:
                kwargs["endpoint_url"] = self.endpoint
            if self._credentials is not None:
                kwargs["aws_access_key_id"] = self._credentials.access_key_id
                kwargs["aws_secret_access_key"] = self._credentials.secret_access_key
            cfg = Config(
                connect_timeout=self._timeouts[0],
                read_timeout=self._timeouts[1],
                retries={"max_attempts": 2, "mode": "standard"},
                s3={"addressing_style": "path"},
            )
            self._stack = AsyncExitStack()
            self._client = await self._stack.enter_async_context(
                session.client("s3", config=cfg, **kwargs)
            )
        return self._client

    def key(self, feed: str, date: str, name: str) -> str:
        return object_key(self.prefix, feed, date, name)

    async def _list(self, prefix: str, delimiter: str | None) -> tuple[list[str], list[str]]:
        c = await self.client()
        keys: list[str] = []
        dirs: list[str] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        try:
            paginator = c.get_paginator("list_objects_v2")
            async for page in paginator.paginate(**kwargs):
                keys.extend(o["Key"] for o in page.get("Contents", []))
                dirs.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        except Exception as exc:
            raise StorageError(f"cannot list {self.description}: {_describe(exc)}") from None
        return keys, dirs

    def _base(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    async def list_feeds(self) -> list[str]:
        _, dirs = await self._list(self._base(), "/")
        return sorted(d[len(self._base()) :].strip("/") for d in dirs)

    async def list_dates(self, feed: str) -> list[str]:
        base = f"{self._base()}{feed}/"
        _, dirs = await self._list(base, "/")
        return sorted(x for x in (d[len(base) :].strip("/") for d in dirs) if is_date(x))

    async def list_files(self, feed: str, date: str) -> list[str]:
        base = f"{self._base()}{feed}/{date}/"
        keys, _ = await self._list(base, None)
        names = (k[len(base) :] for k in keys)
        return sorted(n for n in names if is_archive_file(n))

    async def get_bytes(self, key: str) -> bytes | None:
        c = await self.client()
        try:
            resp = await c.get_object(Bucket=self.bucket, Key=key)
            async with resp["Body"] as body:
                data: bytes = await body.read()
                return data
        except Exception as exc:
            if _is_not_found(exc):
                return None
            raise StorageError(f"cannot read s3://{self.bucket}/{key}: {_describe(exc)}") from None

    async def read_manifest(self, feed: str, date: str) -> DayManifest | None:
        data = await self.get_bytes(self.key(feed, date, MANIFEST))
        return None if data is None else DayManifest.from_json(data)

    async def iter_compressed(self, feed: str, date: str, name: str) -> AsyncIterator[bytes]:
        c = await self.client()
        key = self.key(feed, date, name)
        try:
            resp = await c.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise StorageError(f"cannot read s3://{self.bucket}/{key}: {_describe(exc)}") from None
        body = resp["Body"]
        try:
            while chunk := await body.read(1 << 20):
                yield chunk
        finally:
            body.close()

    async def put_bytes(self, key: str, data: bytes) -> None:
        c = await self.client()
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        await c.put_object(Bucket=self.bucket, Key=key, Body=data, ContentMD5=md5)

    async def upload_verified(self, path: Path, key: str, sha256: str | None = None) -> int:
        """PUT a file with Content-MD5 (the server rejects a corrupted body), then HEAD it and
        compare size and ETag. Raises on any mismatch; the caller keeps the local file."""
        c = await self.client()
        digest, length = await asyncio.to_thread(_md5_of, path)
        meta = {"sha256": sha256} if sha256 else {}
        with path.open("rb") as body:  # streamed: memory does not grow with the file
            await c.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentLength=length,
                ContentMD5=base64.b64encode(digest).decode(),
                Metadata=meta,
            )
        head = await c.head_object(Bucket=self.bucket, Key=key)
        size = int(head["ContentLength"])
        etag = str(head.get("ETag", "")).strip('"')
        if size != length or (etag and "-" not in etag and etag != digest.hex()):
            raise StorageError(
                f"upload of s3://{self.bucket}/{key} did not verify "
                f"(size {size} vs {length}, etag {etag} vs {digest.hex()})"
            )
        return length

    async def close(self) -> None:
        if self._stack is not None:
            with contextlib.suppress(Exception):
                await self._stack.aclose()
        self._stack = None
        self._client = None


def _md5_of(path: Path) -> tuple[bytes, int]:
    h = hashlib.md5()
    n = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.digest(), n


def _describe(exc: Exception) -> str:
    err = getattr(exc, "response", {}).get("Error", {})
    if err:
        return f"{err.get('Code', '')} {err.get('Message', '')}".strip()
    return f"{exc.__class__.__name__}: {exc}".split("\n")[0]


def store_for(env: Environment) -> LocalStore | S3Store:
    st = env.spec.storage
    if st.s3 is not None:
        return S3Store.from_spec(st.s3, resolve_s3_credentials(env))
    assert st.local is not None
    return LocalStore(Path(st.local.path))
