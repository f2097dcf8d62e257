"""Runtime resolution of $key: references: mounted Secret files, env vars, files; re-read on
every call so a rotated key is used without a restart; values never shown."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from ssmd.feeds.kalshi.auth import generate_private_key, private_key_pem
from ssmd.keys.resolve import KeyResolveError, KeyResolver, SecretValue, kalshi_credentials
from ssmd.runtime import RuntimeContext
from ssmd.sim.kalshi.keys import ensure_demo_credentials
from ssmd.spec import Environment

from .keys_support import no_secret_leaks as no_secret_leaks  # autouse
from .keys_support import secret
from .support import make_environment

SECRET = secret("s3cr3t-value-7f2c")


def _env() -> Environment:
    return make_environment(
        "kalshi",
        keys={
            "kalshi": {
                "type": "api_key",
                "fields": ["api_key_id", "private_key"],
                "env": {"api_key_id": "KALSHI_API_KEY_ID"},
                "fileEnv": {"private_key": "KALSHI_PRIVATE_KEY_PATH"},
            },
            "archive-s3": {"type": "storage", "fields": ["access_key_id", "secret_access_key"]},
        },
        feed={"endpoint": "wss://example.invalid/ws", "credentials": "$key:kalshi"},
        storage={"s3": {"bucket": "bkt", "credentials": "$key:archive-s3"}},
    )


def test_secret_value_never_shows_itself() -> None:
    v = SecretValue(SECRET)
    for shown in (repr(v), str(v), f"{v}", f"{v!r}", f"{v:>40}", repr([v]), repr({"k": v})):
        assert SECRET not in shown
    assert v.reveal_text() == SECRET and v == SecretValue(SECRET.encode()) and len(v) == len(SECRET)
    with pytest.raises(TypeError):
        pickle.dumps(v)


def test_mounted_secret_files_win_and_are_reread(tmp_path: Path) -> None:
    d = tmp_path / "keys" / "archive-s3"
    d.mkdir(parents=True)
    (d / "access_key_id").write_text("AKIA1")
    (d / "secret_access_key").write_text(SECRET)
    r = KeyResolver(_env(), environ={"SSMD_KEYS_DIR": str(tmp_path / "keys")})
    values = r.resolve("$key:archive-s3")
    assert isinstance(values, dict)
    assert {k: v.reveal_text() for k, v in values.items()} == {
        "access_key_id": "AKIA1",
        "secret_access_key": SECRET,
    }
    (d / "access_key_id").write_text("AKIA2")  # rotation: the kubelet swapped the file
    one = r.resolve("$key:archive-s3.access_key_id")
    assert isinstance(one, SecretValue) and one.reveal_text() == "AKIA2"


def test_env_file_env_and_generic_sources(tmp_path: Path) -> None:
    pem = tmp_path / "k.pem"
    pem.write_text("PEM")
    environ = {
        "KALSHI_API_KEY_ID": "kid",
        "KALSHI_PRIVATE_KEY_PATH": str(pem),
        "SSMD_KEY_ARCHIVE_S3_ACCESS_KEY_ID": "AK",
    }
    r = KeyResolver(_env(), environ=environ)
    assert r.field("kalshi", "api_key_id").reveal_text() == "kid"
    assert r.field("kalshi", "private_key").reveal_text() == "PEM"
    assert r.field("archive-s3", "access_key_id").reveal_text() == "AK"
    assert r.present("archive-s3") == ["access_key_id"]
    with pytest.raises(KeyResolveError) as err:
        r.field("archive-s3", "secret_access_key")
    msg = str(err.value)
    assert (
        "$SSMD_KEY_ARCHIVE_S3_SECRET_ACCESS_KEY" in msg and "ssmd key set kalshi archive-s3" in msg
    )
    with pytest.raises(KeyResolveError, match="does not declare key 'nope'"):
        r.field("nope", "x")
    with pytest.raises(KeyResolveError, match="has no field"):
        r.field("kalshi", "password")
    environ["KALSHI_PRIVATE_KEY_PATH"] = str(tmp_path / "missing.pem")
    with pytest.raises(KeyResolveError, match="does not exist"):
        r.field("kalshi", "private_key")


def test_kalshi_credentials_follow_rotation(tmp_path: Path) -> None:
    keys = tmp_path / "keys" / "kalshi"
    keys.mkdir(parents=True)
    k1, k2 = generate_private_key(), generate_private_key()
    (keys / "api_key_id").write_text("id-1\n")
    (keys / "private_key").write_bytes(private_key_pem(k1))
    r = KeyResolver(_env(), keys_dir=tmp_path / "keys", environ={})
    c1 = kalshi_credentials(_env(), resolver=r)
    assert c1 is not None and c1.key_id == "id-1"
    assert c1.private_key.public_key().public_numbers() == k1.public_key().public_numbers()
    (keys / "api_key_id").write_text("id-2")
    (keys / "private_key").write_bytes(private_key_pem(k2))
    c2 = kalshi_credentials(_env(), resolver=r)
    assert c2 is not None and c2.key_id == "id-2"
    assert c2.private_key.public_key().public_numbers() == k2.public_key().public_numbers()
    (keys / "private_key").write_text("garbage")
    with pytest.raises(KeyResolveError, match="not a valid PEM") as err:
        kalshi_credentials(_env(), resolver=r)
    assert "garbage" not in str(err.value)


def test_kalshi_credentials_sim_demo_and_none(tmp_path: Path) -> None:
    env = make_environment("local")
    assert kalshi_credentials(env) is None
    key_id, _ = ensure_demo_credentials(tmp_path)
    ctx = RuntimeContext(env=env, nats_url="nats://127.0.0.1:1", sim_credentials_dir=tmp_path)
    creds = kalshi_credentials(env, ctx)
    assert creds is not None and creds.key_id == key_id


def test_kalshi_credentials_from_the_documented_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ssmd up` against the real exchange without a $key: reference."""
    pem = tmp_path / "k.pem"
    key = generate_private_key()
    pem.write_bytes(secret_pem(private_key_pem(key)))
    env = make_environment("live", feed={"endpoint": "wss://example.invalid/ws"})
    assert kalshi_credentials(env) is None
    monkeypatch.setenv("KALSHI_API_KEY_ID", "kid-env")
    monkeypatch.setenv("KALSHI_PRIVATE_KEY_PATH", str(pem))
    creds = kalshi_credentials(env)
    assert creds is not None and creds.key_id == "kid-env"
    monkeypatch.setenv("KALSHI_PRIVATE_KEY_PATH", str(tmp_path / "missing.pem"))
    with pytest.raises(KeyResolveError, match="cannot read private key file"):
        kalshi_credentials(env)


def secret_pem(pem: bytes) -> bytes:
    secret(pem.decode())
    return pem
