"""The simulator's side of Kalshi auth: accepted keys, handshake checks, demo credentials."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ssmd.feeds.kalshi import WS_PATH
from ssmd.feeds.kalshi.auth import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    KeyLoadError,
    generate_private_key,
    load_private_key,
    private_key_pem,
    verify,
)

DEMO_KEYID_FILE = "kalshi-demo.keyid"
DEMO_PEM_FILE = "kalshi-demo.pem"


def demo_credentials_paths(directory: str | Path) -> tuple[Path, Path]:
    """Where the simulator writes its demo credentials: (key id file, private key PEM)."""
    d = Path(directory)
    return d / DEMO_KEYID_FILE, d / DEMO_PEM_FILE


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed


def ensure_demo_credentials(directory: str | Path) -> tuple[str, RSAPublicKey]:
    """Reuse the demo key pair in ``directory`` or create one; returns (key id, public key).

    Reusing it keeps a client's credentials valid across simulator restarts."""
    keyid_path, pem_path = demo_credentials_paths(directory)
    if keyid_path.is_file() and pem_path.is_file():
        try:
            key_id = keyid_path.read_text().strip()
            key = load_private_key(pem_path.read_bytes())
            if key_id:
                return key_id, key.public_key()
        except (OSError, KeyLoadError):
            pass  # unreadable or corrupt: make a fresh pair
    keyid_path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_private_key()
    key_id = str(uuid.uuid4())
    _write_private(pem_path, private_key_pem(key))
    _write_private(keyid_path, (key_id + "\n").encode())
    return key_id, key.public_key()


@dataclass(frozen=True)
class AuthResult:
    ok: bool
    authenticated: bool = False
    key_id: str | None = None
    reason: str = ""


class KeyRing:
    def __init__(
        self, keys: Mapping[str, RSAPublicKey], max_skew_s: float, allow_unauthenticated: bool
    ) -> None:
        self.keys = dict(keys)
        self.max_skew_ms = int(max_skew_s * 1000)
        self.allow_unauthenticated = allow_unauthenticated

    def check(self, headers: Mapping[str, str], now_ms: int | None = None) -> AuthResult:
        """Check the three handshake headers like the exchange: any failure is a 401."""
        key_id = headers.get(HEADER_KEY)
        ts = headers.get(HEADER_TIMESTAMP)
        sig = headers.get(HEADER_SIGNATURE)
        if key_id is None and ts is None and sig is None:
            if self.allow_unauthenticated:
                return AuthResult(ok=True)  # legacy optional auth: public channels only
            return AuthResult(ok=False, reason="missing authentication headers")
        if not key_id or not ts or not sig:
            return AuthResult(ok=False, reason="incomplete authentication headers")
        pub = self.keys.get(key_id)
        if pub is None:
            return AuthResult(ok=False, reason="unknown API key id")
        if not ts.isdigit():
            return AuthResult(ok=False, reason="timestamp is not Unix milliseconds")
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        if abs(now - int(ts)) > self.max_skew_ms:
            return AuthResult(ok=False, reason="stale timestamp")
        if not verify(pub, sig, int(ts), "GET", WS_PATH):
            return AuthResult(ok=False, reason="bad signature")
        return AuthResult(ok=True, authenticated=True, key_id=key_id)
