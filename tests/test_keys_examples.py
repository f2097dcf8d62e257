"""The committed example manifests are valid Keys whose values unseal with the test key."""

from __future__ import annotations

import yaml

from ssmd.spec import Key, validate_document

from .keys_support import controller_private_key, unseal
from .support import ROOT

EXAMPLES = ROOT / "sealed-secrets" / "examples"


def test_examples_unseal_with_the_test_controller_key() -> None:
    priv = controller_private_key()
    for name, field, value in [
        ("kalshi-kalshi", "api_key_id", b"00000000-0000-0000-0000-EXAMPLE00000"),
        ("kalshi-archive-s3", "secret_access_key", b"example/not/a/real/secret"),
    ]:
        doc = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
        key = validate_document(doc)
        assert (
            isinstance(key, Key) and key.metadata.name == name and key.metadata.namespace == "ssmd"
        )
        label = f"ssmd/{name}".encode()
        assert unseal(priv, key.spec.encrypted_data[field], label) == value
    ss = yaml.safe_load((EXAMPLES / "kalshi-kalshi.sealedsecret.yaml").read_text())
    key_doc = yaml.safe_load((EXAMPLES / "kalshi-kalshi.yaml").read_text())
    assert (
        ss["kind"] == "SealedSecret"
        and ss["spec"]["encryptedData"] == key_doc["spec"]["encryptedData"]
    )
