"""Feed reconciliation: validate, pick the version in effect, and list who uses the feed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from ssmd.spec import Feed, SpecError, validate_document
from ssmd_operator import status
from ssmd_operator.kube import Kube


def validate(body: dict[str, Any]) -> Feed:
    meta = body.get("metadata") or {}
    doc = {
        "apiVersion": body.get("apiVersion", "ssmd.io/v1alpha1"),
        "kind": "Feed",
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
        "spec": body.get("spec") or {},
    }
    feed = validate_document(doc, f"{meta.get('namespace')}/{meta.get('name')}")
    assert isinstance(feed, Feed)
    return feed


def version_table(feed: Feed, day: date) -> list[dict[str, Any]]:
    return [
        {
            "version": v.version,
            "effectiveFrom": v.effective_from.isoformat(),
            "effectiveTo": v.effective_to.isoformat() if v.effective_to else None,
            "endpoint": v.endpoint,
            "active": v.active_on(day),
        }
        for v in sorted(feed.spec.versions, key=lambda v: v.effective_from)
    ]


def users(feed_name: str, environments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Environments whose spec.feed.name is this feed (default feed name: kalshi)."""
    return [
        e
        for e in environments
        if ((e.get("spec") or {}).get("feed") or {}).get("name", "kalshi") == feed_name
    ]


def market_count(envs: list[dict[str, Any]]) -> int | None:
    """Markets known to the secmaster of the environments using the feed (the largest)."""
    counts = []
    for e in envs:
        st = e.get("status") or {}
        sec = (st.get("components") or {}).get("secmaster") or {}
        n = sec.get("markets", st.get("markets"))
        if isinstance(n, int):
            counts.append(n)
    return max(counts) if counts else None


def feed_status(
    body: dict[str, Any], environments: list[dict[str, Any]], today: date
) -> dict[str, Any]:
    generation = int((body.get("metadata") or {}).get("generation") or 1)
    old = list((body.get("status") or {}).get("conditions") or [])
    try:
        feed = validate(body)
    except SpecError as exc:
        msg = "; ".join(exc.problems)
        cond = status.condition("Ready", False, "InvalidSpec", msg, generation)
        return {
            "observedGeneration": generation,
            "conditions": status.merge_conditions(old, [cond]),
        }
    active = feed.spec.active_version(today)
    using = users(feed.metadata.name, environments)
    ready = active is not None
    cond = status.condition(
        "Ready",
        ready,
        "ActiveVersion" if ready else "NoActiveVersion",
        f"version {active.version} is in effect on {today}"
        if active
        else f"no version is in effect on {today}",
        generation,
    )
    return {
        "phase": "Active" if ready else "Inactive",
        "observedGeneration": generation,
        "conditions": status.merge_conditions(old, [cond]),
        "activeVersion": active.version if active else None,
        "environments": sorted(e["metadata"]["name"] for e in using),
        "markets": market_count(using),
        "versions": version_table(feed, today),
    }


async def reconcile(
    kube: Kube, namespace: str, name: str, today: date | None = None
) -> dict[str, Any]:
    body = await kube.get("Feed", namespace, name)
    if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return {}
    envs = await kube.list("Environment", namespace)
    patch = feed_status(body, envs, today or datetime.now(UTC).date())
    await kube.patch("Feed", namespace, name, {"status": patch}, sub="status")
    return patch
