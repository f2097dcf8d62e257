"""Sealed values decrypt with the controller's private key, by an unsealing routine written
here from the sealed-secrets documented format (docs/developer/crypto.md), not from ssmd's
sealing code: 2-byte big-endian length, RSA-OAEP/SHA-256 session key (label = scope),
AES-256-GCM with a zero nonce."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa

from ssmd.keys import seal

from .keys_support import TEST_CERT, controller_private_key, unseal
from .keys_support import no_secret_leaks as no_secret_leaks  # autouse

LABELS = {
    "strict": b"ssmd/kalshi-kalshi",
    "namespace-wide": b"ssmd",
    "cluster-wide": b"",
}


@pytest.fixture(scope="module")
def priv() -> rsa.RSAPrivateKey:
    return controller_private_key()


@pytest.mark.parametrize("scope", list(LABELS))
def test_sealed_value_unseals_for_each_scope(
    priv: rsa.RSAPrivateKey, scope: seal.SealScope
) -> None:
    pub = seal.load_certificate_file(TEST_CERT)
    value = "-----BEGIN PRIVATE KEY-----\nnot-a-real-key-ünïcode\n"
    sealed = seal.seal_value(pub, value, namespace="ssmd", name="kalshi-kalshi", scope=scope)
    assert unseal(priv, sealed, LABELS[scope]) == value.encode()


@pytest.mark.parametrize(
    ("scope", "wrong"),
    [
        ("strict", b"ssmd/other-name"),
        ("strict", b"other-ns/kalshi-kalshi"),
        ("strict", b"ssmd"),
        ("namespace-wide", b"other-ns"),
        ("namespace-wide", b""),
        ("cluster-wide", b"ssmd"),
    ],
)
def test_wrong_scope_label_fails(
    priv: rsa.RSAPrivateKey, scope: seal.SealScope, wrong: bytes
) -> None:
    pub = seal.load_certificate_file(TEST_CERT)
    sealed = seal.seal_value(pub, b"v", namespace="ssmd", name="kalshi-kalshi", scope=scope)
    with pytest.raises(ValueError):  # OAEP decoding error: the label is bound in
        unseal(priv, sealed, wrong)


def test_each_value_has_its_own_session_key(priv: rsa.RSAPrivateKey) -> None:
    pub = priv.public_key()
    a = seal.seal_values(pub, {"x": "same", "y": "same"}, namespace="n", name="k")
    b = seal.seal_value(pub, "same", namespace="n", name="k")
    assert len({a["x"], a["y"], b}) == 3
    assert {unseal(priv, v, b"n/k") for v in (*a.values(), b)} == {b"same"}


def test_tampered_ciphertext_fails(priv: rsa.RSAPrivateKey) -> None:
    sealed = base64.b64decode(seal.seal_value(priv.public_key(), "v", namespace="n", name="k"))
    tampered = base64.b64encode(sealed[:-1] + bytes([sealed[-1] ^ 1])).decode()
    with pytest.raises(InvalidTag):
        unseal(priv, tampered, b"n/k")


def test_certificate_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(seal.SealError, match="cannot read certificate"):
        seal.load_certificate_file(tmp_path / "missing.pem")
    bad = tmp_path / "bad.pem"
    bad.write_text("hello")
    with pytest.raises(seal.SealError, match="not a PEM certificate"):
        seal.load_certificate_file(bad)


@pytest.fixture
def cert_server() -> Iterator[str]:
    """A stand-in for the controller's /v1/cert.pem on 127.0.0.1."""
    pem = TEST_CERT.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.endswith("/v1/cert.pem"):
                self.send_response(200)
                self.send_header("Content-Type", "application/x-pem-file")
                self.end_headers()
                self.wfile.write(pem)
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_fetch_certificate_from_controller(cert_server: str, priv: rsa.RSAPrivateKey) -> None:
    url = cert_server + seal.controller_cert_path()
    pub = seal.fetch_certificate(url)
    sealed = seal.seal_value(pub, "x", namespace="a", name="b", scope="cluster-wide")
    assert unseal(priv, sealed, b"") == b"x"
    with pytest.raises(seal.SealError, match="HTTP 404"):
        seal.fetch_certificate(cert_server + "/nope")


def test_sealed_secret_manifest_scope_annotations() -> None:
    m = seal.sealed_secret_manifest("e-k", "ns", {"b": "2", "a": "1"}, scope="namespace-wide")
    assert m["kind"] == "SealedSecret" and m["apiVersion"] == "bitnami.com/v1alpha1"
    meta = m["metadata"]
    assert isinstance(meta, dict)
    assert meta["annotations"] == {"sealedsecrets.bitnami.com/namespace-wide": "true"}
    spec = m["spec"]
    assert isinstance(spec, dict)
    assert list(spec["encryptedData"]) == ["a", "b"]
