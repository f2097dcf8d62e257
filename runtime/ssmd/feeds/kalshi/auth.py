"""RSA-PSS request signing for Kalshi (WebSocket handshake and REST).

The string to sign is ``timestamp_ms + METHOD + path`` (path without query string),
signed with RSA-PSS / SHA-256 / MGF1-SHA-256 / salt = digest length, base64 standard.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HEADER_KEY = "KALSHI-ACCESS-KEY"
HEADER_TIMESTAMP = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIGNATURE = "KALSHI-ACCESS-SIGNATURE"

_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


class KeyLoadError(ValueError):
    """A private or public key could not be loaded. The message never contains key material."""


def message_to_sign(timestamp_ms: int, method: str, path: str) -> bytes:
    """The exact bytes Kalshi expects to be signed. The query string is never signed."""
    return f"{timestamp_ms}{method.upper()}{path.split('?', 1)[0]}".encode()


def load_private_key(pem: bytes, password: bytes | None = None) -> rsa.RSAPrivateKey:
    """Load an RSA private key from PEM (PKCS#1 ``BEGIN RSA PRIVATE KEY`` or PKCS#8)."""
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError) as exc:
        raise KeyLoadError(
            "private key is not a valid PEM RSA key (PKCS#1 or PKCS#8 expected)"
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyLoadError("private key is not an RSA key; Kalshi needs RSA")
    return key


def load_private_key_file(path: str | Path) -> rsa.RSAPrivateKey:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise KeyLoadError(f"cannot read private key file {p}: {exc.strerror}") from exc
    try:
        return load_private_key(data)
    except KeyLoadError as exc:
        raise KeyLoadError(f"{p}: {exc}") from None


def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise KeyLoadError("public key is not a valid PEM RSA public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyLoadError("public key is not an RSA key")
    return key


def generate_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(key: rsa.RSAPrivateKey, timestamp_ms: int, method: str, path: str) -> str:
    """Base64 (standard alphabet, padded) RSA-PSS signature of the request."""
    sig = key.sign(message_to_sign(timestamp_ms, method, path), _PSS, hashes.SHA256())
    return base64.b64encode(sig).decode("ascii")


def verify(
    public_key: rsa.RSAPublicKey, signature_b64: str, timestamp_ms: int, method: str, path: str
) -> bool:
    try:
        sig = base64.b64decode(signature_b64, validate=True)
    except (ValueError, TypeError):
        return False
    try:
        public_key.verify(sig, message_to_sign(timestamp_ms, method, path), _PSS, hashes.SHA256())
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class KalshiCredentials:
    """An API key id and its private key. The repr never shows the key."""

    key_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    def __repr__(self) -> str:
        return f"KalshiCredentials(key_id={self.key_id!r}, private_key=<redacted>)"

    def headers(
        self, method: str = "GET", path: str = "/trade-api/ws/v2", now_ms: int | None = None
    ) -> dict[str, str]:
        """Fresh auth headers: call again on every (re)connect, the timestamp goes stale."""
        ts = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        return {
            HEADER_KEY: self.key_id,
            HEADER_TIMESTAMP: str(ts),
            HEADER_SIGNATURE: sign(self.private_key, ts, method, path),
        }

    @classmethod
    def from_files(cls, key_id: str, private_key_path: str | Path) -> KalshiCredentials:
        return cls(key_id=key_id.strip(), private_key=load_private_key_file(private_key_path))

    @classmethod
    def from_env(
        cls, key_id_var: str = "KALSHI_API_KEY_ID", key_path_var: str = "KALSHI_PRIVATE_KEY_PATH"
    ) -> KalshiCredentials:
        """Read ``KALSHI_API_KEY_ID`` and ``KALSHI_PRIVATE_KEY_PATH`` (or ``KALSHI_PRIVATE_KEY``
        holding the PEM itself)."""
        key_id = os.environ.get(key_id_var)
        if not key_id:
            raise KeyLoadError(f"{key_id_var} is not set; export your Kalshi API key id")
        path = os.environ.get(key_path_var)
        if path:
            return cls.from_files(key_id, path)
        pem = os.environ.get("KALSHI_PRIVATE_KEY")
        if pem:
            return cls(key_id=key_id, private_key=load_private_key(pem.encode()))
        raise KeyLoadError(
            f"{key_path_var} is not set; point it at your Kalshi private key PEM file"
        )
