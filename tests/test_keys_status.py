"""Key state and expiry from (fields, present, lastRotated, rotationDays, now); KeysReady."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ssmd.keys.status import (
    evaluate_key,
    key_status,
    keys_ready_condition,
    set_command,
)
from ssmd.spec import Environment
from ssmd.spec.key import KeyStatus

from .support import make_environment

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FIELDS = ["api_key_id", "private_key"]


def test_states() -> None:
    assert evaluate_key(FIELDS, set(), None, 90, NOW).state == "not_set"
    partial = evaluate_key(FIELDS, {"api_key_id", "unrelated"}, None, 90, NOW)
    assert partial.state == "partial"
    assert partial.fields_present == ["api_key_id"] and partial.missing_fields == ["private_key"]
    assert evaluate_key(FIELDS, set(FIELDS), NOW, 90, NOW).state == "set"


def test_expiry_from_rotation_days_and_last_rotated() -> None:
    rotated = NOW - timedelta(days=89)
    ev = evaluate_key(FIELDS, set(FIELDS), rotated, 90, NOW)
    assert ev.state == "set"
    assert ev.expires_at == rotated + timedelta(days=90)
    assert ev.expires_in_days(NOW) == 1.0
    exactly = evaluate_key(FIELDS, set(FIELDS), NOW - timedelta(days=90), 90, NOW)
    assert exactly.state == "expired"
    late = evaluate_key(FIELDS, set(FIELDS), NOW - timedelta(days=100), 90, NOW)
    assert late.state == "expired" and late.expires_in_days(NOW) == -10.0
    never = evaluate_key(FIELDS, set(FIELDS), NOW - timedelta(days=1000), None, NOW)
    assert never.state == "set" and never.expires_at is None and never.expires_in_days(NOW) is None


def test_key_status_model() -> None:
    ev = evaluate_key(FIELDS, set(FIELDS), NOW, 90, NOW)
    st = key_status(ev, secret_name="kalshi-kalshi", observed_generation=3, now=NOW)
    assert st.state == "set"
    assert st.last_rotated == "2026-06-01T12:00:00Z"
    assert st.expires_at == "2026-08-30T12:00:00Z"
    assert st.secret_name == "kalshi-kalshi"
    assert st.conditions[0].type == "Ready" and st.conditions[0].status == "True"
    dumped = st.model_dump(by_alias=True, exclude_none=True)
    assert dumped["fieldsPresent"] == FIELDS and "lastRotated" in dumped


def _env() -> Environment:
    return make_environment(
        "kalshi",
        keys={
            "kalshi": {"type": "api_key", "fields": FIELDS, "rotationDays": 90},
            "archive-s3": {"type": "storage", "fields": ["access_key_id", "secret_access_key"]},
            "hooks": {"type": "webhook", "fields": ["url"], "required": False},
        },
        feed={"endpoint": "wss://example.invalid/ws", "credentials": "$key:kalshi"},
    )


def _set(fields: list[str]) -> KeyStatus:
    return KeyStatus(state="set", fields_present=fields)


def test_keys_ready_flips_when_last_required_key_is_set() -> None:
    env = _env()
    cond = keys_ready_condition(env, {}, now=NOW)
    assert cond.type == "KeysReady" and cond.status == "False"
    assert "'archive-s3' is not set" in cond.message and "(and 1 more)" in cond.message
    assert (
        "`ssmd key set kalshi archive-s3 --field access_key_id=VALUE "
        "--field secret_access_key=VALUE`" in cond.message
    )
    statuses: dict[str, KeyStatus | None] = {
        "archive-s3": _set(["access_key_id", "secret_access_key"])
    }
    cond = keys_ready_condition(env, statuses, now=NOW)
    assert cond.status == "False"
    assert (
        cond.message
        == "key 'kalshi' is not set: run `ssmd key set kalshi kalshi --field api_key_id=VALUE "
        "--from-file private_key=PATH`"
    )
    statuses["kalshi"] = KeyStatus(state="partial", fields_present=["api_key_id"])
    cond = keys_ready_condition(env, statuses, now=NOW, namespace="ssmd")
    assert cond.message == (
        "key 'kalshi' is missing field(s) private_key: run "
        "`ssmd key set kalshi kalshi --from-file private_key=PATH --namespace ssmd`"
    )
    statuses["kalshi"] = _set(FIELDS)
    cond = keys_ready_condition(env, statuses, now=NOW)
    assert cond.status == "True" and cond.reason == "KeysSet"  # 'hooks' is optional
    statuses["kalshi"] = KeyStatus(
        state="expired", fields_present=FIELDS, expires_at="2026-05-01T00:00:00Z"
    )
    cond = keys_ready_condition(env, statuses, now=NOW)
    assert cond.status == "False"
    assert (
        "expired at 2026-05-01T00:00:00Z" in cond.message
        and "ssmd key rotate kalshi kalshi" in cond.message
    )


def test_no_keys_is_ready() -> None:
    cond = keys_ready_condition(make_environment("local"), {}, now=NOW)
    assert cond.status == "True"


def test_set_command() -> None:
    assert set_command("e", "k", ["token"]) == "ssmd key set e k --field token=VALUE"
