"""Value types shared by the resource models: durations, byte sizes, key references."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")
_SIZE_RE = re.compile(r"^(\d+)\s*(|B|K|Ki|KB|KiB|M|Mi|MB|MiB|G|Gi|GB|GiB|T|Ti|TB|TiB)$")
_SIZE_UNITS = {
    "": 1, "B": 1,
    "K": 1000, "KB": 1000, "Ki": 1024, "KiB": 1024,
    "M": 1000**2, "MB": 1000**2, "Mi": 1024**2, "MiB": 1024**2,
    "G": 1000**3, "GB": 1000**3, "Gi": 1024**3, "GiB": 1024**3,
    "T": 1000**4, "TB": 1000**4, "Ti": 1024**4, "TiB": 1024**4,
}  # fmt: skip
KEY_REF_PREFIX = "$key:"
_KEY_REF_RE = re.compile(r"^\$key:([a-z0-9][a-z0-9-]*)(?:\.([A-Za-z0-9_-]+))?$")
DURATION_PATTERN = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$"
KEY_REF_PATTERN = r"^\$key:[a-z0-9][a-z0-9-]*(\.[A-Za-z0-9_-]+)?$"


def parse_duration(value: str) -> timedelta:
    """``1h30m``, ``24h``, ``15m``, ``500ms``, ``7d`` → timedelta."""
    m = _DURATION_RE.match(value.strip()) if isinstance(value, str) else None
    if not m or not value.strip() or not any(m.groups()):
        raise ValueError(f'"{value}" is not a duration (e.g. 24h, 90m, 30s, 500ms)')
    d, h, mi, s, ms = (int(g) if g else 0 for g in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s, milliseconds=ms)


def duration_seconds(value: str) -> float:
    return parse_duration(value).total_seconds()


def _check_duration(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration: give a unit (e.g. {int(value)}s)")
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration (e.g. 24h, 90m)")
    parse_duration(value)
    return value.strip()


def parse_size(value: str | int) -> int:
    """``10Gi``, ``512MB``, ``1048576`` → bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{value} is not a size: must not be negative")
        return value
    m = _SIZE_RE.match(str(value).strip())
    if not m:
        raise ValueError(f'"{value}" is not a size (e.g. 10Gi, 512Mi, 1048576)')
    return int(m.group(1)) * _SIZE_UNITS[m.group(2)]


def _check_size(value: Any) -> str | int:
    parse_size(value)
    return value if isinstance(value, int) else str(value).strip()


class LiteralSecretError(ValueError):
    """Raised for a literal where a ``$key:`` reference is required. Never holds the value."""


def parse_key_ref(value: str) -> tuple[str, str | None]:
    """``$key:kalshi`` → ("kalshi", None); ``$key:kalshi.private_key`` → ("kalshi", "private_key")."""
    m = _KEY_REF_RE.match(value)
    if not m:
        raise ValueError("not a key reference")
    return m.group(1), m.group(2)


def _check_key_ref(value: Any) -> str:
    if isinstance(value, str) and _KEY_REF_RE.match(value):
        return value
    if isinstance(value, str) and value.startswith(KEY_REF_PREFIX):
        raise LiteralSecretError(
            "is not a valid key reference: use $key:NAME or $key:NAME.FIELD "
            "(lower-case name, letters/digits/-)"
        )
    # The value is never echoed: it may be a secret pasted by mistake.
    raise LiteralSecretError(
        "must be a key reference like $key:NAME, not a literal value; "
        "store the secret with `ssmd key set` and reference it"
    )


Duration = Annotated[
    str,
    BeforeValidator(_check_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN}),
]
ByteSize = Annotated[
    str | int,
    BeforeValidator(_check_size),
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]
KeyRef = Annotated[
    str,
    BeforeValidator(_check_key_ref),
    WithJsonSchema({"type": "string", "pattern": KEY_REF_PATTERN}),
]
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=63)]
