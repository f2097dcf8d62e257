"""Key state, expiry and the Environment's ``KeysReady`` condition: pure functions.

The operator feeds them what it observed (the Secret's data keys, when the values were last
rotated) and an injected ``now``; the CLI uses the same functions for ``ssmd key list``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ssmd.spec.common import Condition
from ssmd.spec.environment import Environment, KeyRequirement
from ssmd.spec.key import KeyState, KeyStatus

KEYS_READY = "KeysReady"
# Annotation on a Key: when its values were last set (ISO 8601, UTC). Written by the CLI.
LAST_ROTATED_ANNOTATION = "ssmd.io/last-rotated"
ENV_LABEL = "ssmd.io/environment"
KEY_LABEL = "ssmd.io/key"


def resource_name(env: str, key: str) -> str:
    """Key, SealedSecret and Secret all share this name."""
    return f"{env}-{key}"


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass(frozen=True)
class KeyEvaluation:
    state: KeyState
    fields_present: list[str]
    missing_fields: list[str]
    last_rotated: datetime | None
    expires_at: datetime | None

    def expires_in_days(self, now: datetime) -> float | None:
        if self.expires_at is None:
            return None
        return (self.expires_at - now).total_seconds() / 86400.0


def evaluate_key(
    fields: list[str],
    present: set[str] | list[str],
    last_rotated: datetime | None,
    rotation_days: int | None,
    now: datetime,
) -> KeyEvaluation:
    """``set`` when every field has a value, ``partial`` when some do, ``not_set`` when none
    do, and ``expired`` when all are set but ``last_rotated + rotation_days`` has passed."""
    have = [f for f in fields if f in set(present)]
    missing = [f for f in fields if f not in set(present)]
    expires_at = (
        last_rotated + timedelta(days=rotation_days)
        if last_rotated is not None and rotation_days is not None
        else None
    )
    state: KeyState
    if not have:
        state = "not_set"
    elif missing:
        state = "partial"
    elif expires_at is not None and now >= expires_at:
        state = "expired"
    else:
        state = "set"
    return KeyEvaluation(state, have, missing, last_rotated, expires_at)


def key_status(
    evaluation: KeyEvaluation,
    *,
    secret_name: str | None,
    observed_generation: int | None = None,
    now: datetime,
) -> KeyStatus:
    ready = evaluation.state == "set"
    reason = {"set": "Set", "partial": "Partial", "not_set": "NotSet", "expired": "Expired"}[
        evaluation.state
    ]
    if evaluation.state == "set":
        message = "every field has a value"
    elif evaluation.state == "expired":
        message = f"expired at {format_time(evaluation.expires_at or now)}: rotate it"
    elif evaluation.state == "partial":
        message = f"missing field(s): {', '.join(evaluation.missing_fields)}"
    else:
        message = "no value set yet"
    return KeyStatus(
        state=evaluation.state,
        observed_generation=observed_generation,
        fields_present=evaluation.fields_present,
        last_rotated=format_time(evaluation.last_rotated) if evaluation.last_rotated else None,
        expires_at=format_time(evaluation.expires_at) if evaluation.expires_at else None,
        secret_name=secret_name,
        conditions=[
            Condition(
                type="Ready",
                status="True" if ready else "False",
                reason=reason,
                message=message,
                last_transition_time=format_time(now),
                observed_generation=observed_generation,
            )
        ],
    )


def set_command(
    env: str,
    key: str,
    fields: list[str],
    *,
    namespace: str | None = None,
    verb: str = "set",
) -> str:
    """The exact command a person runs to give a key its values."""
    parts = ["ssmd", "key", verb, env, key]
    for f in fields:
        placeholder = "PATH" if "private_key" in f or f.endswith(("_file", "_pem")) else "VALUE"
        parts += (
            ["--from-file", f"{f}={placeholder}"]
            if placeholder == "PATH"
            else [
                "--field",
                f"{f}={placeholder}",
            ]
        )
    if namespace and namespace != "default":
        parts += ["--namespace", namespace]
    return " ".join(parts)


def _problem(
    env: str, name: str, req: KeyRequirement, status: KeyStatus | None, namespace: str | None
) -> str | None:
    state = status.state if status is not None else "not_set"
    if state == "set":
        return None
    if state == "expired":
        when = status.expires_at if status is not None else None
        return (
            f"key {name!r} expired{f' at {when}' if when else ''}: run "
            f"`{set_command(env, name, req.fields, namespace=namespace, verb='rotate')}`"
        )
    present = set(status.fields_present) if status is not None else set()
    missing = [f for f in req.fields if f not in present]
    what = "is not set" if state == "not_set" else f"is missing field(s) {', '.join(missing)}"
    return f"key {name!r} {what}: run `{set_command(env, name, missing, namespace=namespace)}`"


def keys_ready_condition(
    env: Environment,
    statuses: Mapping[str, KeyStatus | None],
    *,
    now: datetime,
    namespace: str | None = None,
) -> Condition:
    """True when every *required* key of ``env.spec.keys`` is set and not expired.

    ``statuses`` maps the key name (as in ``spec.keys``) to its Key's status, or None when
    the Key does not exist yet. The message names the first missing key and the command."""
    problems = keys_problems(env, statuses, namespace)
    if problems:
        extra = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Condition(
            type=KEYS_READY,
            status="False",
            reason="KeysMissing",
            message=problems[0] + extra,
            last_transition_time=format_time(now),
        )
    required = sum(1 for r in env.spec.keys.values() if r.required)
    return Condition(
        type=KEYS_READY,
        status="True",
        reason="KeysSet",
        message=f"{required} required key(s) set" if required else "no keys required",
        last_transition_time=format_time(now),
    )


def keys_problems(
    env: Environment, statuses: Mapping[str, KeyStatus | None], namespace: str | None = None
) -> list[str]:
    """Every required key that is not usable, one line each (for `ssmd env validate --cluster`)."""
    return [
        p
        for name, req in sorted(env.spec.keys.items())
        if req.required
        and (p := _problem(env.name, name, req, statuses.get(name), namespace)) is not None
    ]
