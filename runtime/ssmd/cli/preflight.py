"""Checks an Environment must pass against a cluster before it is applied
(``ssmd env validate --cluster``, ``ssmd env apply``): the feed exists and is active, the
required keys are set, NATS and the archive storage are reachable.

Each check gives one ✓/✗ line; none needs or shows a secret value."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ssmd.keys.cluster import Cluster, ClusterError
from ssmd.keys.manage import evaluate_manifest
from ssmd.keys.status import keys_problems, resource_name
from ssmd.spec import Environment, SpecError, validate_document
from ssmd.spec.key import KeyStatus
from ssmd.transport.connect import redact_url


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{'✓' if self.ok else '✗'} {self.name}: {self.message}"


async def check_feed(cluster: Cluster, env: Environment, namespace: str, now: datetime) -> Check:
    from ssmd.spec import Feed

    name = env.spec.feed.name
    body = await cluster.get("ssmdfeeds", namespace, name)
    if body is None:
        return Check("feed", False, f"Feed {name!r} does not exist in namespace {namespace}")
    try:
        feed = validate_document(
            {k: body[k] for k in ("apiVersion", "kind", "spec")} | {"metadata": {"name": name}},
            f"Feed {name}",
        )
    except SpecError as exc:
        return Check("feed", False, f"Feed {name!r} is invalid: {exc.problems[0]}")
    assert isinstance(feed, Feed)
    version = feed.spec.active_version(now.date())
    if version is None:
        return Check("feed", False, f"Feed {name!r} has no version active on {now.date()}")
    return Check("feed", True, f"{name} version {version.version} is active")


async def check_keys(cluster: Cluster, env: Environment, namespace: str, now: datetime) -> Check:
    statuses: dict[str, KeyStatus | None] = {}
    for key, req in env.spec.keys.items():
        body = await cluster.get("ssmdkeys", namespace, resource_name(env.name, key))
        raw = (body or {}).get("status") or {}
        if raw.get("state"):
            statuses[key] = KeyStatus.model_validate(raw)
        elif body is not None:  # no operator status yet: judge from the sealed fields
            ev = evaluate_manifest(req, body, now)
            statuses[key] = KeyStatus(state=ev.state, fields_present=ev.fields_present)
        else:
            statuses[key] = None
    problems = keys_problems(env, statuses, namespace)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check("keys", False, problems[0] + more)
    n = sum(1 for r in env.spec.keys.values() if r.required)
    return Check("keys", True, f"{n} required key(s) set" if n else "no keys required")


async def check_nats(env: Environment, timeout: float) -> Check:
    url = env.spec.transport.url
    if url is None:
        return Check("nats", False, "spec.transport.url is not set (required on Kubernetes)")
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port or 4222
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        return Check("nats", False, f"{redact_url(url)} is not reachable: {exc or 'timed out'}")
    try:
        first = await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, TimeoutError):
        first = b""
    finally:
        writer.close()
    if not first.startswith(b"INFO "):
        return Check("nats", False, f"{redact_url(url)} answered, but not as a NATS server")
    return Check("nats", True, f"{redact_url(url)} is reachable")


async def check_storage(env: Environment, timeout: float) -> Check:
    import aiohttp

    s3 = env.spec.storage.s3
    if s3 is None:
        local = env.spec.storage.local
        return Check(
            "storage", True, f"local volume ({local.size if local else '?'}, made by the operator)"
        )
    endpoint = s3.endpoint or f"https://s3.{s3.region}.amazonaws.com"
    url = f"{endpoint.rstrip('/')}/{s3.bucket}"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.head(url, allow_redirects=False) as resp,
        ):
            status = resp.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return Check(
            "storage", False, f"S3 endpoint {endpoint} is not reachable: {exc or 'timed out'}"
        )
    if status == 404:
        return Check("storage", False, f"S3 bucket {s3.bucket!r} does not exist at {endpoint}")
    # 200/301/403: the endpoint answers and the bucket exists (credentials are the keys' job).
    return Check("storage", True, f"S3 {endpoint} bucket {s3.bucket} answers (HTTP {status})")


async def cluster_checks(
    env: Environment,
    namespace: str,
    *,
    cluster: Cluster | None = None,
    now: datetime | None = None,
    timeout: float = 5.0,
) -> list[Check]:
    now = now or datetime.now(UTC)
    owned = cluster is None
    c: Any = cluster
    try:
        if c is None:
            c = await Cluster.connect()
    except ClusterError as exc:
        return [Check("cluster", False, str(exc))]
    try:
        checks: list[Check] = []
        for fn in (check_feed, check_keys):
            try:
                checks.append(await fn(c, env, namespace, now))
            except ClusterError as exc:
                checks.append(Check(fn.__name__.removeprefix("check_"), False, str(exc)))
        checks.append(await check_nats(env, timeout))
        checks.append(await check_storage(env, timeout))
        return checks
    finally:
        if owned:
            await c.api.close()
