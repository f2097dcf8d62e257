"""Key → SealedSecret → Secret → Key status on the emulator, with the unmodified operator.

The test plays the sealed-secrets controller: it unseals the SealedSecret with the test
controller key (an unsealer written from the controller's documented format) and creates the
Secret, as the controller would. ``ssmd key set`` runs as a process against the emulator."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import kmock
import yaml
from kopf.testing import KopfRunner
from prometheus_client import REGISTRY

from ssmd.feeds.kalshi.auth import generate_private_key, private_key_pem
from ssmd.keys.seal import controller_cert_path
from ssmd.spec import Environment, validate_document
from ssmd.transport.server import EmbeddedNats
from ssmd_operator.keys import keys_ready
from ssmd_operator.kube import Kube
from tests import k8semu
from tests.keys_support import (
    TEST_CERT,
    assert_clean,
    controller_private_key,
    run_cli,
    secret,
    unseal,
)
from tests.keys_support import no_secret_leaks as no_secret_leaks  # autouse
from tests.operator.support import KEYS, SEALED, SEALED_CRD, eventually, kalshi_document, live

SECRETS = kmock.resource("v1/secrets")

KEY_ID = secret("kid-chain-6b1f0e22")
PEM = secret(private_key_pem(generate_private_key()).decode())
S3_ID = secret("AKIACHAINTESTONLY01")
S3_SECRET = secret("chain/secret/TESTONLY/4f8a9b")


async def ssmd(cwd: Path, *args: str, check: bool = True) -> str:
    code, text = await run_cli(cwd, *args)
    if check:
        assert code == 0, f"ssmd {' '.join(args)}: exit {code}: {text}"
    return text


def key_status(k8s: Any, name: str) -> dict[str, Any]:
    return dict((live(k8s, KEYS, name) or {}).get("status") or {})


async def play_controller(kube: Kube, k8s: Any, name: str) -> None:
    """What the sealed-secrets controller does with the SealedSecret ``name``."""
    ss = await eventually(lambda: live(k8s, SEALED, name))
    label = f"default/{name}".encode()  # strict scope
    data = {
        field: base64.b64encode(unseal(controller_private_key(), sealed, label)).decode()
        for field, sealed in ss["spec"]["encryptedData"].items()
    }
    template = ss["spec"]["template"]["metadata"]
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": template.get("labels") or {},
            "ownerReferences": [
                {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "name": name,
                 "uid": ss["metadata"]["uid"], "controller": True}
            ],
        },
        "data": data,
    }  # fmt: skip
    if await kube.get("Secret", "default", name) is None:
        await kube.create(body)
    else:
        current = await kube.get("Secret", "default", name)
        assert current is not None
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await kube.replace(body)


async def test_key_sealedsecret_secret_status_chain(
    k8s: k8semu.Emulator,
    operator: KopfRunner,
    nats_server: EmbeddedNats,
    kube: Kube,
    tmp_path: Path,
) -> None:
    k8s.register_crd(SEALED_CRD)
    doc = kalshi_document(nats_server.url)
    (tmp_path / "kalshi.pem").write_text(PEM)
    env = validate_document({**doc, "metadata": {"name": "kalshi"}})
    assert isinstance(env, Environment)
    await kube.create(doc)

    # The operator creates the Keys the Environment names: empty, owned by the Environment.
    for name in ("kalshi-kalshi", "kalshi-archive-s3"):
        await eventually(lambda n=name: key_status(k8s, n).get("state") == "not_set")  # type: ignore[misc]
    key = live(k8s, KEYS, "kalshi-kalshi")
    assert key is not None
    assert key["metadata"]["ownerReferences"][0]["kind"] == "Environment"
    assert (
        key["spec"]["fields"] == ["api_key_id", "private_key"] and key["spec"]["rotationDays"] == 90
    )
    ready, cond = await keys_ready(kube, env, "default")
    assert not ready
    assert cond["message"].startswith(
        "key 'archive-s3' is not set: run `ssmd key set kalshi archive-s3 --field access_key_id=VALUE"
    )

    # `ssmd key set`: ENV by name (from the cluster: no environments/ here); the certificate
    # from the controller, through the API server's service proxy.
    k8s[f"get {controller_cert_path()}"] << TEST_CERT.read_bytes()
    out = await ssmd(tmp_path, "key", "set", "kalshi", "kalshi", "--field", f"api_key_id={KEY_ID}",
                     "--from-file", "private_key=kalshi.pem")  # fmt: skip
    assert "✓ sealed kalshi: api_key_id, private_key → default/kalshi-kalshi" in out
    ss = await eventually(lambda: live(k8s, SEALED, "kalshi-kalshi"))
    key = live(k8s, KEYS, "kalshi-kalshi")
    assert key is not None
    assert ss["metadata"]["ownerReferences"][0] == {
        "apiVersion": "ssmd.io/v1alpha1", "kind": "Key", "name": "kalshi-kalshi",
        "uid": key["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True,
    }  # fmt: skip
    assert ss["spec"]["encryptedData"] == key["spec"]["encryptedData"]
    assert ss["spec"]["template"]["metadata"]["labels"]["ssmd.io/key"] == "kalshi"

    # The audit log: an Event on the Key, with the actor from the kubeconfig context.
    events = await kube.list("Event", "default")
    audit = [
        e
        for e in events
        if e["involvedObject"]["name"] == "kalshi-kalshi" and e["reason"] == "KeySet"
    ]
    assert len(audit) == 1 and audit[0]["message"].startswith("cli:kmock@")
    assert audit[0]["involvedObject"]["kind"] == "Key"

    # Until the controller has made the Secret the key is not set.
    assert key_status(k8s, "kalshi-kalshi")["state"] == "not_set"
    await play_controller(kube, k8s, "kalshi-kalshi")
    st = await eventually(
        lambda: (s := key_status(k8s, "kalshi-kalshi")).get("state") == "set" and s
    )
    assert st["fieldsPresent"] == ["api_key_id", "private_key"]
    assert st["secretName"] == "kalshi-kalshi"
    rotated = datetime.fromisoformat(st["lastRotated"].replace("Z", "+00:00"))
    assert st["expiresAt"] == (rotated + timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert next(c for c in st["conditions"] if c["type"] == "Ready")["status"] == "True"
    days = REGISTRY.get_sample_value(
        "ssmd_key_expires_in_days", {"environment": "kalshi", "key_name": "kalshi"}
    )
    assert days is not None and 89 < days <= 90

    ready, cond = await keys_ready(kube, env, "default")
    assert not ready and "archive-s3" in cond["message"] and "(and" not in cond["message"]

    # A partial key, then the last field: KeysReady flips.
    await ssmd(tmp_path, "key", "set", "kalshi", "archive-s3", "--field", f"access_key_id={S3_ID}",
               "--cert", str(TEST_CERT))  # fmt: skip
    await play_controller(kube, k8s, "kalshi-archive-s3")
    await eventually(lambda: key_status(k8s, "kalshi-archive-s3").get("state") == "partial")
    ready, cond = await keys_ready(kube, env, "default")
    assert not ready and cond["message"] == (
        "key 'archive-s3' is missing field(s) secret_access_key: run "
        "`ssmd key set kalshi archive-s3 --field secret_access_key=VALUE`"
    )
    await ssmd(tmp_path, "key", "set", "kalshi", "archive-s3", "--field", f"secret_access_key={S3_SECRET}",
               "--cert", str(TEST_CERT))  # fmt: skip
    await eventually(
        lambda: (
            len(
                (live(k8s, SEALED, "kalshi-archive-s3") or {})
                .get("spec", {})
                .get("encryptedData", {})
            )
            == 2
        )
    )
    await play_controller(kube, k8s, "kalshi-archive-s3")
    await eventually(lambda: key_status(k8s, "kalshi-archive-s3").get("state") == "set")
    ready, cond = await keys_ready(kube, env, "default")
    assert ready and cond["reason"] == "KeysSet"

    # list/verify read the cluster; values never appear anywhere.
    out = await ssmd(tmp_path, "key", "verify", "kalshi")
    assert "✓ archive-s3: set" in out and "✓ kalshi: set" in out
    out = await ssmd(tmp_path, "key", "list", "kalshi", "--json")
    assert {r["name"]: r["status"] for r in yaml.safe_load(out)} == {
        "archive-s3": "set",
        "kalshi": "set",
    }

    # Rotation and deletion are audited too.
    await ssmd(tmp_path, "key", "rotate", "kalshi", "kalshi", "--field", f"api_key_id={KEY_ID}",
               "--from-file", "private_key=kalshi.pem")  # fmt: skip
    await ssmd(tmp_path, "key", "delete", "kalshi", "archive-s3", "--yes")
    await eventually(lambda: live(k8s, KEYS, "kalshi-archive-s3") is None)
    reasons = {
        (e["involvedObject"]["name"], e["reason"]) for e in await kube.list("Event", "default")
    }
    assert {("kalshi-kalshi", "KeyRotated"), ("kalshi-archive-s3", "KeyDeleted")} <= reasons

    # The controller removes the Secret (e.g. the SealedSecret was deleted): not set again.
    await kube.delete("Secret", "default", "kalshi-kalshi")
    await eventually(lambda: key_status(k8s, "kalshi-kalshi").get("state") == "not_set")
    out = await ssmd(tmp_path, "key", "verify", "kalshi", check=False)
    assert "✗ kalshi: not set" in out

    # Secrets hold the values (base64) by design; nothing else may (status, Events, Keys...).
    plain = "\n".join(
        str(v.raw) for k, v in k8s.objects.items() if k[0] != SECRETS and not v.deleted
    )
    assert_clean(
        plain
    )  # kopf logs (its thread logs to the root logger) are checked by no_secret_leaks
    assert KEY_ID not in plain and base64.b64encode(KEY_ID.encode()).decode() not in plain
