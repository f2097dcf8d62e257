"""Feed reconcile: the version in effect, who uses the feed, the market count; `ssmd feed`."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import orjson
from kopf.testing import KopfRunner
from nats.js import JetStreamContext

from ssmd.transport.kv import ensure_kv
from ssmd.transport.server import EmbeddedNats
from ssmd_operator.kube import Kube
from tests import k8semu
from tests.operator.support import (
    FEEDS,
    env_body,
    eventually,
    kalshi_document,
    kubectl,
    live,
    ssmd,
)


def feed_body(today: datetime) -> dict[str, object]:
    cut = today.date() - timedelta(days=10)
    return {
        "apiVersion": "ssmd.io/v1alpha1",
        "kind": "Feed",
        "metadata": {"name": "kalshi", "namespace": "default"},
        "spec": {
            "venue": "kalshi",
            "displayName": "Kalshi",
            "versions": [
                {"version": "v1", "effectiveFrom": "2024-01-01",
                 "effectiveTo": (cut - timedelta(days=1)).isoformat(),
                 "endpoint": "wss://old.example/trade-api/ws/v2"},
                {"version": "v2", "effectiveFrom": cut.isoformat(),
                 "endpoint": "wss://external-api-ws.kalshi.com/trade-api/ws/v2"},
            ],
        },
    }  # fmt: skip


async def test_feed_status_and_cli(
    nats_server: EmbeddedNats, k8s: k8semu.Emulator, operator: KopfRunner, js: JetStreamContext,
    kube: Kube,
) -> None:  # fmt: skip
    now = datetime.now(UTC)
    await kube.create(env_body(kalshi_document(nats_server.url)))
    await kube.create(feed_body(now))
    kv = await ensure_kv(js, "kalshi-status")
    await kv.put("secmaster", orjson.dumps({"markets": 42, "heartbeat": time.time()}))

    def feed_status() -> dict[str, object]:
        return dict((live(k8s, FEEDS, "kalshi") or {}).get("status") or {})

    st = await eventually(lambda: (s := feed_status()).get("markets") == 42 and s)
    assert st["activeVersion"] == "v2"
    assert st["environments"] == ["kalshi"]
    assert st["phase"] == "Active"

    out = await kubectl("get", "ssmdfeeds")
    assert out.splitlines()[0].split()[:4] == ["NAME", "VENUE", "ACTIVE", "MARKETS"]
    assert out.splitlines()[1].split()[:4] == ["kalshi", "kalshi", "v2", "42"]

    old_day = (now.date() - timedelta(days=30)).isoformat()
    listed_text, shown, bad, missing = await asyncio.gather(  # independent: side by side
        ssmd("feed", "list", "--json"),
        ssmd("feed", "show", "kalshi", "--as-of", old_day),
        ssmd("feed", "show", "kalshi", "--as-of", "yesterday", check=False),
        ssmd("feed", "show", "nope", check=False),
    )
    listed = json.loads(listed_text)
    assert [(f["name"], f["activeVersion"]) for f in listed] == [("kalshi", "v2")]
    assert f"in effect on {old_day}: v1 -> wss://old.example/trade-api/ws/v2" in shown
    assert "environments: kalshi" in shown and "markets: 42" in shown
    assert bad.strip() == "error: --as-of 'yesterday' is not a date (YYYY-MM-DD)"
    assert missing.strip() == "error: no Feed 'nope' in namespace 'default'"


async def test_key_printer_columns(k8s: k8semu.Emulator, kube: Kube) -> None:
    await kube.create({
        "apiVersion": "ssmd.io/v1alpha1", "kind": "Key",
        "metadata": {"name": "kalshi-kalshi", "namespace": "default"},
        "spec": {"type": "api_key", "fields": ["api_key_id", "private_key"], "required": True},
    })  # fmt: skip
    out = await kubectl("get", "ssmdkeys")
    assert out.splitlines()[0].split()[:4] == ["NAME", "TYPE", "REQUIRED", "STATE"]
    assert out.splitlines()[1].split()[:3] == ["kalshi-kalshi", "api_key", "true"]
