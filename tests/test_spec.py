"""Resource models: loading, error messages, example environments."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssmd.spec import SpecError, load_documents, load_environment, load_file, parse_duration
from ssmd.spec.environment import Environment
from ssmd.spec.types import parse_size

from .support import ROOT

HEADER = "apiVersion: ssmd.io/v1alpha1\nkind: Environment\nmetadata:\n  name: t\n"


def errors_of(body: str) -> str:
    with pytest.raises(SpecError) as info:
        load_documents(HEADER + body, "environments/x.yaml")
    return str(info.value)


@pytest.mark.parametrize("path", sorted((ROOT / "environments").glob("*.yaml")))
def test_example_environments_validate(path: Path) -> None:
    env = load_environment(path)
    assert env.name == path.stem


def test_local_environment_is_the_simulator() -> None:
    env = load_environment(ROOT / "environments" / "local.yaml")
    assert env.spec.feed.is_simulated
    assert env.spec.transport.url is None
    assert env.spec.storage.local is not None


def test_bad_duration_names_file_field_and_examples() -> None:
    msg = errors_of("spec:\n  transport:\n    stream:\n      maxAge: 24hours\n")
    assert msg == (
        'environments/x.yaml: spec.transport.stream.maxAge: "24hours" is not a duration '
        "(e.g. 24h, 90m, 30s, 500ms)"
    )


def test_unknown_field_lists_allowed_fields() -> None:
    msg = errors_of("spec:\n  feed:\n    endpont: sim\n")
    assert msg.startswith("environments/x.yaml: spec.feed.endpont: unknown field (allowed: ")
    assert "endpoint" in msg


def test_wrong_type() -> None:
    msg = errors_of("spec:\n  connector:\n    maxInFlight: lots\n")
    assert "spec.connector.maxInFlight" in msg and "integer" in msg


def test_missing_required_key_field() -> None:
    msg = errors_of("spec:\n  keys:\n    kalshi:\n      type: api_key\n")
    assert msg == "environments/x.yaml: spec.keys.kalshi.fields: required field is missing"


def test_closed_set_lists_choices() -> None:
    msg = errors_of("spec:\n  channels: [orderbook_delta, ticker_v2]\n")
    assert "spec.channels[1]" in msg and "'ticker_v2' is not allowed" in msg


def test_literal_secret_is_refused_and_never_echoed() -> None:
    secret = "sk-live-5f1c2a9e8d434b7a"
    msg = errors_of(f"spec:\n  feed:\n    credentials: {secret}\n")
    assert "spec.feed.credentials: must be a key reference like $key:NAME" in msg
    assert secret not in msg


def test_key_reference_must_be_declared() -> None:
    msg = errors_of("spec:\n  feed:\n    credentials: $key:kalshi\n")
    assert "spec.feed.credentials references key 'kalshi'" in msg
    assert "spec: spec." not in msg


def test_key_reference_field_checked() -> None:
    body = (
        "spec:\n  keys:\n    kalshi: {type: api_key, fields: [api_key_id]}\n"
        "  feed:\n    credentials: $key:kalshi.private_key\n"
    )
    assert "field 'private_key' of key 'kalshi'" in errors_of(body)


def test_bad_yaml_names_line() -> None:
    with pytest.raises(SpecError) as info:
        load_documents("spec: {\n", "e.yaml")
    assert str(info.value).startswith("e.yaml: line ")


def test_wrong_kind_and_version() -> None:
    with pytest.raises(SpecError, match="kind: 'Pod' is not an ssmd kind"):
        load_documents("apiVersion: ssmd.io/v1alpha1\nkind: Pod\nmetadata: {name: a}\n")
    with pytest.raises(SpecError, match=r"apiVersion: 'v1' is not ssmd\.io/v1alpha1"):
        load_documents("apiVersion: v1\nkind: Environment\nmetadata: {name: a}\n")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such file"):
        load_file(tmp_path / "nope.yaml")


def test_storage_exactly_one() -> None:
    msg = errors_of("spec:\n  storage:\n    local: {}\n    s3: {bucket: abc}\n")
    assert "set exactly one of local or s3" in msg


def test_bad_timezone() -> None:
    msg = errors_of(
        "spec:\n  schedule: {timezone: Mars/Olympus, startup: '08:00', teardown: '20:00'}\n"
    )
    assert "'Mars/Olympus' is not a time zone" in msg


def test_round_trip_through_yaml() -> None:
    env = load_environment(ROOT / "environments" / "kalshi.yaml")
    import yaml

    dumped = yaml.safe_dump(env.model_dump(by_alias=True, exclude_none=True, mode="json"))
    again = load_documents(dumped)[0]
    assert isinstance(again, Environment)
    assert again == env


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400), ("90m", 5400), ("1h30m", 5400), ("500ms", 0.5), ("7d", 604800)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "24hours", "h", "1.5h", "-1s"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(bad)


def test_sizes() -> None:
    assert parse_size("10Gi") == 10 * 1024**3
    assert parse_size("512MB") == 512 * 10**6
    assert parse_size(1234) == 1234
    with pytest.raises(ValueError, match="is not a size"):
        parse_size("ten gigs")


def test_local_yaml_is_the_builtin_default() -> None:
    """`ssmd up` with no file uses the model defaults: they must be what local.yaml says."""
    from ssmd.spec.common import ObjectMeta

    assert load_environment(ROOT / "environments" / "local.yaml") == Environment(
        metadata=ObjectMeta(name="local")
    )
