"""Optional client authentication with API keys from ``spec.gateway.auth`` (``$key:...``).

Every field value of the referenced key is a list of accepted API keys (separated by commas,
spaces or new lines). Keys are re-read at most every few seconds so a rotation needs no
restart. A key is never logged, echoed or shown in a repr; clients are labelled by a short
hash of theirs."""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from aiohttp import web

from ssmd.keys.resolve import KeyResolver, SecretValue
from ssmd.spec.environment import Environment

_SPLIT = re.compile(r"[\s,]+")


def key_label(key: bytes) -> str:
    return "key-" + hashlib.sha256(key).hexdigest()[:8]


class ApiKeyAuth:
    def __init__(
        self, env: Environment, *, resolver: KeyResolver | None = None, ttl_s: float = 5.0
    ) -> None:
        self.ref = env.spec.gateway.auth
        self._resolver = resolver or KeyResolver(env)
        self._ttl = ttl_s
        self._keys: list[bytes] = []
        self._at = -1e9

    @property
    def enabled(self) -> bool:
        return self.ref is not None

    def _load(self) -> list[bytes]:
        now = time.monotonic()
        if now - self._at > self._ttl:
            assert self.ref is not None
            got = self._resolver.resolve(self.ref)
            values = [got] if isinstance(got, SecretValue) else list(got.values())
            keys: list[bytes] = []
            for v in values:
                keys.extend(k.encode() for k in _SPLIT.split(v.reveal_text()) if k)
            self._keys, self._at = keys, now
        return self._keys

    def check(self, request: web.Request) -> str | None:
        """The client's label when its key is accepted (or auth is off), else None."""
        if not self.enabled:
            return "anonymous"
        presented = _presented(request)
        if not presented:
            return None
        candidate = presented.encode()
        ok = False
        for k in self._load():
            # Every key compared, constant time: no early exit that leaks which matched.
            ok |= hmac.compare_digest(k, candidate)
        return key_label(candidate) if ok else None

    def __repr__(self) -> str:
        return f"ApiKeyAuth(ref={self.ref!r}, keys=<redacted>)"


def _presented(request: web.Request) -> str | None:
    h = request.headers.get("Authorization", "")
    if h[:7].lower() == "bearer ":
        return h[7:].strip() or None
    return request.headers.get("X-API-Key") or request.query.get("api_key") or None
