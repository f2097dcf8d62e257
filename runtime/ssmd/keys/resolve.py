"""Resolving ``$key:NAME[.FIELD]`` to values at run time, re-read on every call.

Where a value comes from, first match wins:

1. ``$SSMD_KEYS_DIR/NAME/FIELD``: the key's Secret mounted as a volume (Kubernetes). The
   kubelet swaps these files when the Secret changes, so a rotated key is seen on the next
   read without a restart.
2. The environment variable ``spec.keys.NAME.env[FIELD]`` names (local runs).
3. The file whose path is in the environment variable ``spec.keys.NAME.fileEnv[FIELD]``.
4. ``SSMD_KEY_{NAME}_{FIELD}`` (upper case, ``-`` as ``_``): a generic fallback.

Nothing is cached: callers ask again on every (re)connect. Values are wrapped in
:class:`SecretValue`, whose ``repr``/``str`` never show them, and errors name only where a
value was looked for."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from ssmd.spec.environment import Environment, KeyRequirement
from ssmd.spec.types import parse_key_ref

if TYPE_CHECKING:
    from ssmd.feeds.kalshi.auth import KalshiCredentials
    from ssmd.runtime import RuntimeContext

KEYS_DIR_VAR = "SSMD_KEYS_DIR"
KALSHI_KEY_ID_FIELDS = ("api_key_id", "key_id")
KALSHI_PRIVATE_KEY_FIELDS = ("private_key", "private_key_pem")


class KeyResolveError(LookupError):
    """A key value is not available. The message says where it was looked for, never a value."""


class SecretValue:
    """A secret that never shows itself: ``repr``/``str``/format give ``<redacted>``.

    Call :meth:`reveal` (bytes) or :meth:`reveal_text` at the one place the value is used."""

    __slots__ = ("__value",)

    def __init__(self, value: bytes | str) -> None:
        self.__value = value.encode() if isinstance(value, str) else bytes(value)

    def reveal(self) -> bytes:
        return self.__value

    def reveal_text(self) -> str:
        return self.__value.decode("utf-8")

    def __repr__(self) -> str:
        return "SecretValue(<redacted>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self.__value, other.__value)

    def __hash__(self) -> int:
        return hash(self.__value)

    def __len__(self) -> int:
        return len(self.__value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("SecretValue cannot be pickled")


def generic_env_var(key: str, field: str) -> str:
    return f"SSMD_KEY_{key}_{field}".upper().replace("-", "_")


class KeyResolver:
    """Resolves the keys of one Environment. Cheap to build; reads sources on every call."""

    def __init__(
        self,
        env: Environment,
        *,
        keys_dir: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.env = env
        self._environ = environ
        self._keys_dir = Path(keys_dir) if keys_dir is not None else None

    @property
    def environ(self) -> Mapping[str, str]:
        return self._environ if self._environ is not None else os.environ

    @property
    def keys_dir(self) -> Path | None:
        if self._keys_dir is not None:
            return self._keys_dir
        d = self.environ.get(KEYS_DIR_VAR)
        return Path(d) if d else None

    def requirement(self, key: str) -> KeyRequirement:
        try:
            return self.env.spec.keys[key]
        except KeyError:
            raise KeyResolveError(
                f"environment {self.env.name!r} does not declare key {key!r} in spec.keys"
            ) from None

    def _sources(self, key: str, field: str, req: KeyRequirement) -> list[str]:
        out = []
        if self.keys_dir is not None:
            out.append(f"file {self.keys_dir / key / field}")
        if field in req.env:
            out.append(f"${req.env[field]}")
        if field in req.file_env:
            out.append(f"the file named by ${req.file_env[field]}")
        out.append(f"${generic_env_var(key, field)}")
        return out

    def find(self, key: str, field: str) -> SecretValue | None:
        """The value, or None when no source has it (re-read now, never cached)."""
        req = self.requirement(key)
        if field not in req.fields:
            raise KeyResolveError(f"key {key!r} has no field {field!r} (fields: {req.fields})")
        env = self.environ
        if self.keys_dir is not None:
            value = _read(self.keys_dir / key / field, key, field)
            if value is not None:
                return value
        var = req.env.get(field)
        if var and env.get(var):
            return SecretValue(env[var])
        var = req.file_env.get(field)
        if var and env.get(var):
            value = _read(Path(env[var]), key, field)
            if value is None:
                raise KeyResolveError(
                    f"key {key!r} field {field!r}: ${var} points to {env[var]}, which does not exist"
                )
            return value
        var = generic_env_var(key, field)
        if env.get(var):
            return SecretValue(env[var])
        return None

    def field(self, key: str, field: str) -> SecretValue:
        value = self.find(key, field)
        if value is None:
            req = self.requirement(key)
            raise KeyResolveError(
                f"key {key!r} field {field!r} of environment {self.env.name!r} has no value "
                f"(looked in {', '.join(self._sources(key, field, req))}); locally export it, "
                f"on Kubernetes run `ssmd key set {self.env.name} {key} ...`"
            )
        return value

    def fields(self, key: str) -> dict[str, SecretValue]:
        """Every field of ``key``; raises for the first that has no value."""
        return {f: self.field(key, f) for f in self.requirement(key).fields}

    def present(self, key: str) -> list[str]:
        """Names of the fields that have a value now (never the values)."""
        return [f for f in self.requirement(key).fields if self.find(key, f) is not None]

    def resolve(self, ref: str) -> SecretValue | dict[str, SecretValue]:
        """``$key:NAME.FIELD`` → one value; ``$key:NAME`` → every field."""
        try:
            key, field = parse_key_ref(ref)
        except ValueError:
            raise KeyResolveError(
                "not a key reference (use $key:NAME or $key:NAME.FIELD)"
            ) from None
        return self.fields(key) if field is None else self.field(key, field)


def _read(path: Path, key: str, field: str) -> SecretValue | None:
    try:
        return SecretValue(path.read_bytes())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyResolveError(
            f"key {key!r} field {field!r}: cannot read {path}: {exc.strerror}"
        ) from None


def _kalshi_field(r: KeyResolver, key: str, names: tuple[str, ...]) -> SecretValue:
    fields = r.requirement(key).fields
    for n in names:
        if n in fields:
            return r.field(key, n)
    raise KeyResolveError(f"key {key!r} needs a field named {' or '.join(names)} for Kalshi")


def kalshi_credentials(
    env: Environment,
    ctx: RuntimeContext | None = None,
    *,
    resolver: KeyResolver | None = None,
) -> KalshiCredentials | None:
    """The Kalshi credentials for ``env``, read fresh: call it on every (re)connect so a
    rotated key is used without a restart.

    ``spec.feed.credentials`` (``$key:NAME``) names a key with ``api_key_id`` and
    ``private_key`` (a PEM). Without a reference: for a real exchange,
    ``KALSHI_API_KEY_ID`` + ``KALSHI_PRIVATE_KEY_PATH`` when set; for the simulator, its demo
    credentials in ``ctx.sim_credentials_dir``; otherwise None (unauthenticated)."""
    from ssmd.feeds.kalshi.auth import KalshiCredentials, KeyLoadError, load_private_key

    ref = env.spec.feed.credentials
    if ref is None:
        environ = resolver.environ if resolver is not None else os.environ
        if not env.spec.feed.is_simulated and environ.get("KALSHI_API_KEY_ID"):
            # A real exchange with no $key: reference: the documented local variables.
            try:
                return KalshiCredentials.from_env()
            except KeyLoadError as exc:
                raise KeyResolveError(str(exc)) from None
        if ctx is not None and ctx.sim_credentials_dir is not None:
            from ssmd.sim.kalshi.keys import demo_credentials_paths

            keyid_path, pem_path = demo_credentials_paths(ctx.sim_credentials_dir)
            if keyid_path.is_file() and pem_path.is_file():
                return KalshiCredentials.from_files(keyid_path.read_text(), pem_path)
        return None
    key, field = parse_key_ref(ref)
    if field is not None:
        raise KeyResolveError(
            f"spec.feed.credentials must name the whole key ($key:{key}), not one field"
        )
    r = resolver or KeyResolver(env)
    key_id = _kalshi_field(r, key, KALSHI_KEY_ID_FIELDS)
    pem = _kalshi_field(r, key, KALSHI_PRIVATE_KEY_FIELDS)
    try:
        private_key = load_private_key(pem.reveal())
    except KeyLoadError as exc:
        raise KeyResolveError(f"key {key!r}: {exc}") from None
    return KalshiCredentials(key_id=key_id.reveal_text().strip(), private_key=private_key)
