"""Sealing values for the Bitnami sealed-secrets controller, without ``kubeseal``.

Format (source: bitnami-labs/sealed-secrets ``pkg/crypto/crypto.go`` ``HybridEncrypt`` and
``docs/developer/crypto.md``; the scope labels from ``EncryptionLabel`` in
``pkg/apis/sealedsecrets/v1alpha1/sealedsecret_expansion.go``)::

    uint16 big-endian len(rsa_ct) || rsa_ct || aes_gcm_ct_with_tag

* ``rsa_ct`` = RSA-OAEP(SHA-256, MGF1-SHA-256, label) of a fresh 32-byte session key;
* ``aes_gcm_ct_with_tag`` = AES-256-GCM of the value under the session key, with an all-zero
  12-byte nonce (safe: the key is used exactly once) and no associated data;
* label: strict ``namespace/name``, namespace-wide ``namespace``, cluster-wide empty.

The controller decrypts with the same label, so a value sealed for one name/namespace cannot
be unsealed under another: the OAEP check fails."""

from __future__ import annotations

import base64
import os
import ssl
import struct
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SealScope = Literal["strict", "namespace-wide", "cluster-wide"]
SCOPES: Final[tuple[SealScope, ...]] = ("strict", "namespace-wide", "cluster-wide")
SESSION_KEY_BYTES: Final = 32
_ZERO_NONCE: Final = bytes(12)
# Annotations the controller reads to learn which label a SealedSecret was sealed with.
SCOPE_ANNOTATIONS: Final[dict[SealScope, dict[str, str]]] = {
    "strict": {},
    "namespace-wide": {"sealedsecrets.bitnami.com/namespace-wide": "true"},
    "cluster-wide": {"sealedsecrets.bitnami.com/cluster-wide": "true"},
}
# The controller's service, as kubeseal finds it by default.
DEFAULT_CONTROLLER_NAMESPACE: Final = "kube-system"
DEFAULT_CONTROLLER_NAME: Final = "sealed-secrets-controller"


class SealError(ValueError):
    """Sealing or certificate loading failed. The message never holds a value."""


def encryption_label(scope: SealScope, namespace: str, name: str) -> bytes:
    if scope == "cluster-wide":
        return b""
    if scope == "namespace-wide":
        return namespace.encode()
    if scope == "strict":
        return f"{namespace}/{name}".encode()
    raise SealError(f"unknown scope {scope!r} (use {', '.join(SCOPES)})")


def hybrid_encrypt(public_key: rsa.RSAPublicKey, plaintext: bytes, label: bytes) -> bytes:
    session_key = os.urandom(SESSION_KEY_BYTES)
    rsa_ct = public_key.encrypt(
        session_key,
        padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=label),
    )
    aes_ct = AESGCM(session_key).encrypt(_ZERO_NONCE, plaintext, None)
    return struct.pack(">H", len(rsa_ct)) + rsa_ct + aes_ct


def seal_value(
    public_key: rsa.RSAPublicKey,
    value: bytes | str,
    *,
    namespace: str,
    name: str,
    scope: SealScope = "strict",
) -> str:
    """One value sealed for the SealedSecret ``namespace/name``, base64 (standard, padded)."""
    raw = value.encode() if isinstance(value, str) else value
    label = encryption_label(scope, namespace, name)
    return base64.b64encode(hybrid_encrypt(public_key, raw, label)).decode("ascii")


def seal_values(
    public_key: rsa.RSAPublicKey,
    values: Mapping[str, bytes | str],
    *,
    namespace: str,
    name: str,
    scope: SealScope = "strict",
) -> dict[str, str]:
    """field -> sealed value, each with its own session key."""
    return {
        f: seal_value(public_key, v, namespace=namespace, name=name, scope=scope)
        for f, v in sorted(values.items())
    }


def public_key_from_pem(pem: bytes) -> rsa.RSAPublicKey:
    """The RSA key of the controller's certificate (or of a bare public key PEM)."""
    key: object
    try:
        if b"BEGIN CERTIFICATE" in pem:
            key = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise SealError("not a PEM certificate or public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SealError("the certificate's key is not RSA; sealed-secrets uses RSA")
    return key


def load_certificate_file(path: str | Path) -> rsa.RSAPublicKey:
    p = Path(path)
    try:
        pem = p.read_bytes()
    except OSError as exc:
        raise SealError(f"cannot read certificate {p}: {exc.strerror}") from None
    try:
        return public_key_from_pem(pem)
    except SealError as exc:
        raise SealError(f"{p}: {exc}") from None


def controller_cert_path(
    namespace: str = DEFAULT_CONTROLLER_NAMESPACE, name: str = DEFAULT_CONTROLLER_NAME
) -> str:
    """The API server's service-proxy path to the controller's ``/v1/cert.pem``."""
    return f"/api/v1/namespaces/{namespace}/services/http:{name}:/proxy/v1/cert.pem"


def fetch_certificate(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> rsa.RSAPublicKey:
    """GET the controller's certificate (directly, or through the API server's proxy)."""
    req = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ssl_context) as resp:
            pem = resp.read()
    except urllib.error.HTTPError as exc:
        raise SealError(
            f"cannot fetch the sealed-secrets certificate from {url}: HTTP {exc.code}; "
            "is the controller installed? (or pass --cert FILE)"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SealError(
            f"cannot fetch the sealed-secrets certificate from {url}: {reason} (or pass --cert FILE)"
        ) from None
    try:
        return public_key_from_pem(pem)
    except SealError as exc:
        raise SealError(f"{url}: {exc}") from None


def sealed_secret_manifest(
    name: str,
    namespace: str,
    encrypted_data: Mapping[str, str],
    *,
    scope: SealScope = "strict",
    labels: Mapping[str, str] | None = None,
    owner_references: list[dict[str, object]] | None = None,
) -> dict[str, object]:
    """A ``bitnami.com/v1alpha1`` SealedSecret; the controller makes a Secret of the same name."""
    annotations = dict(SCOPE_ANNOTATIONS[scope])
    meta: dict[str, object] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    if labels:
        meta["labels"] = dict(labels)
    if owner_references:
        meta["ownerReferences"] = owner_references
    template_meta: dict[str, object] = {"name": name, "namespace": namespace}
    if annotations:
        template_meta["annotations"] = dict(annotations)
    if labels:
        template_meta["labels"] = dict(labels)
    return {
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": meta,
        "spec": {
            "encryptedData": dict(sorted(encrypted_data.items())),
            "template": {"metadata": template_meta, "type": "Opaque"},
        },
    }
