"""KeysReady on the Environment: false (naming the key and the command) while a required
key is missing, and the connector is not started; it flips when the last key is set, and
the connector starts (emulator + unmodified operator + real nats-server)."""

from __future__ import annotations

import base64
from typing import Any

import kmock
import pytest
from kopf.testing import KopfRunner

from ssmd.keys.seal import load_certificate_file, seal_values
from ssmd.keys.status import ENV_LABEL, KEY_LABEL
from ssmd.transport.server import EmbeddedNats
from ssmd_operator import reconcile
from ssmd_operator.kube import Kube
from tests import k8semu
from tests.keys_support import TEST_CERT, controller_private_key, secret, unseal
from tests.keys_support import no_secret_leaks as no_secret_leaks  # autouse
from tests.operator.support import cond, eventually, kalshi_document, live, replicas

pytestmark = pytest.mark.skipif(
    hasattr(reconcile, "KEYS_NOT_CHECKED"),
    reason="KeysReady is not wired into the Environment reconcile yet (issue 7 integration note)",
)
KEYS = kmock.resource("ssmd.io/v1alpha1/ssmdkeys")
SEALED = kmock.resource("bitnami.com/v1alpha1/sealedsecrets")
KEY_ID = secret("kid-ready-3e9d")
PEM = secret("-----BEGIN PRIVATE KEY-----\nready-test-not-a-real-key-0123456789abcdef\n")


async def set_key(kube: Kube, k8s: Any, env: str, key: str, values: dict[str, str]) -> None:
    """`ssmd key set` (sealed into the Key), then the controller's part (the Secret)."""
    name = f"{env}-{key}"
    pub = load_certificate_file(TEST_CERT)
    sealed = seal_values(pub, values, namespace="default", name=name)
    await kube.patch("Key", "default", name, {"spec": {"encryptedData": sealed}})
    ss = await eventually(
        lambda: (
            (s := live(k8s, SEALED, name)) and set(s["spec"]["encryptedData"]) == set(values) and s
        )
    )
    data = {
        f: base64.b64encode(
            unseal(controller_private_key(), v, f"default/{name}".encode())
        ).decode()
        for f, v in ss["spec"]["encryptedData"].items()
    }
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": "default",
                "labels": {ENV_LABEL: env, KEY_LABEL: key},
            },
            "data": data,
        }
    )


async def test_keys_ready_gates_the_connector(
    nats_server: EmbeddedNats, k8s: k8semu.Emulator, operator: KopfRunner, kube: Kube
) -> None:
    k8s.register_crd(
        {
            "spec": {
                "group": "bitnami.com",
                "scope": "Namespaced",
                "names": {"kind": "SealedSecret", "plural": "sealedsecrets"},
                "versions": [{"name": "v1alpha1", "served": True}],
            }
        }
    )
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
    await set_key(kube, k8s, "kalshi", "kalshi", {"api_key_id": KEY_ID})
    await eventually(
        lambda: (live(k8s, KEYS, "kalshi-kalshi") or {}).get("status", {}).get("state") == "partial"
    )
    await eventually(
        lambda: (
            "missing field(s) private_key" in cond(k8s, "kalshi", "KeysReady").get("message", "")
        )
    )
    assert replicas(k8s, "kalshi")["connector"] == 0

    await kube.delete("Secret", "default", "kalshi-kalshi")
    await set_key(kube, k8s, "kalshi", "kalshi", {"api_key_id": KEY_ID, "private_key": PEM})
    await eventually(lambda: cond(k8s, "kalshi", "KeysReady").get("status") == "True")
    assert cond(k8s, "kalshi", "KeysReady")["reason"] == "KeysSet"
    await eventually(lambda: replicas(k8s, "kalshi")["connector"] == 1)
