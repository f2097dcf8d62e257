"""KeysReady on the Environment: false (naming the key and the command) while a required
key is missing, and the connector is not started; it flips when the last key is set, and
the connector starts (emulator + unmodified operator + real nats-server)."""

from __future__ import annotations

from kopf.testing import KopfRunner

from ssmd.transport.server import EmbeddedNats
from ssmd_operator.kube import Kube
from tests import k8semu
from tests.keys_support import no_secret_leaks as no_secret_leaks  # autouse
from tests.keys_support import secret
from tests.operator.support import (
    KEYS,
    cond,
    eventually,
    kalshi_document,
    key_state,
    live,
    replicas,
    set_key,
)

KEY_ID = secret("kid-ready-3e9d")
PEM = secret("-----BEGIN PRIVATE KEY-----\nready-test-not-a-real-key-0123456789abcdef\n")


async def test_keys_ready_gates_the_connector(
    nats_server: EmbeddedNats, k8s: k8semu.Emulator, operator: KopfRunner, kube: Kube
) -> None:
    doc = kalshi_document(nats_server.url)
    doc["spec"]["storage"] = {"local": {"path": "./data/archive"}}
    doc["spec"]["keys"].pop("archive-s3")
    await kube.create(doc)

    await eventually(lambda: cond(k8s, "kalshi", "KeysReady").get("status") == "False")
    c = cond(k8s, "kalshi", "KeysReady")
    assert c["message"] == (
        "key 'kalshi' is not set: run `ssmd key set kalshi kalshi --field api_key_id=VALUE "
        "--from-file private_key=PATH`"
    )
    await eventually(lambda: replicas(k8s, "kalshi")["secmaster"] == 1)
    assert replicas(k8s, "kalshi")["connector"] == 0
    assert cond(k8s, "kalshi", "Ready")["status"] == "False"

    await eventually(lambda: live(k8s, KEYS, "kalshi-kalshi"))
    await set_key(kube, k8s, doc, "kalshi", {"api_key_id": KEY_ID})
    await eventually(lambda: key_state(k8s, "kalshi", "kalshi") == "partial")
    await eventually(
        lambda: (
            "missing field(s) private_key" in cond(k8s, "kalshi", "KeysReady").get("message", "")
        )
    )
    assert replicas(k8s, "kalshi")["connector"] == 0

    await kube.delete("Secret", "default", "kalshi-kalshi")
    await set_key(kube, k8s, doc, "kalshi", {"api_key_id": KEY_ID, "private_key": PEM})
    await eventually(lambda: cond(k8s, "kalshi", "KeysReady").get("status") == "True")
    assert cond(k8s, "kalshi", "KeysReady")["reason"] == "KeysSet"
    await eventually(lambda: replicas(k8s, "kalshi")["connector"] == 1)
