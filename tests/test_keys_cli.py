"""``ssmd key`` offline: init/set/rotate/delete with --out DIR, list/show/verify with
--from-dir DIR. Sealed values decrypt with the controller's key; exit codes; no leaks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from ssmd.cli import key as key_cli
from ssmd.cli.main import cli
from ssmd.feeds.kalshi.auth import generate_private_key, private_key_pem

from .keys_support import (
    TEST_CERT,
    assert_clean,
    controller_private_key,
    secret,
    unseal,
)
from .keys_support import (
    no_secret_leaks as no_secret_leaks,  # autouse
)
from .support import ROOT

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KEY_ID = secret("kid-0d5e3a7c-test")
PEM = secret(private_key_pem(generate_private_key()).decode())
S3_ID = secret("AKIATESTONLY00001")
S3_SECRET = secret("wJalrXUtnFEMI/K7MDENG/bPxRfiCYTESTONLY")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    now = [NOW]
    monkeypatch.setattr(key_cli, "_NOW", lambda: now[0])
    yield now


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))  # offline: no cluster
    (tmp_path / "kalshi.yaml").write_text((ROOT / "environments" / "kalshi.yaml").read_text())
    (tmp_path / "kalshi.pem").write_text(PEM)
    return tmp_path


def ssmd(*args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    assert_clean(result.output)
    return result


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


SEAL = ("--cert", str(TEST_CERT), "--out", "sealed-secrets", "-n", "ssmd")


def test_set_out_writes_key_manifest_that_unseals(work: Path, clock: list[datetime]) -> None:
    r = ssmd("key", "set", "kalshi.yaml", "kalshi", "--field", f"api_key_id={KEY_ID}",
             "--from-file", "private_key=kalshi.pem", *SEAL)  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = load(work / "sealed-secrets" / "kalshi-kalshi.yaml")
    assert doc["kind"] == "Key" and doc["metadata"]["name"] == "kalshi-kalshi"
    assert doc["metadata"]["namespace"] == "ssmd"
    assert doc["metadata"]["labels"] == {"ssmd.io/environment": "kalshi", "ssmd.io/key": "kalshi"}
    assert doc["metadata"]["annotations"]["ssmd.io/last-rotated"] == "2026-06-01T12:00:00Z"
    assert doc["metadata"]["annotations"]["ssmd.io/changed-by"].startswith("cli:")
    assert doc["spec"]["rotationDays"] == 90 and doc["spec"]["scope"] == "strict"
    priv = controller_private_key()
    enc = doc["spec"]["encryptedData"]
    assert unseal(priv, enc["api_key_id"], b"ssmd/kalshi-kalshi").decode() == KEY_ID
    assert unseal(priv, enc["private_key"], b"ssmd/kalshi-kalshi").decode() == PEM
    text = (work / "sealed-secrets" / "kalshi-kalshi.yaml").read_text()
    assert KEY_ID not in text and "PRIVATE KEY" not in text


@pytest.mark.parametrize(("scope", "label"), [("namespace-wide", b"ssmd"), ("cluster-wide", b"")])
def test_set_scopes(work: Path, clock: list[datetime], scope: str, label: bytes) -> None:
    r = ssmd("key", "set", "kalshi.yaml", "archive-s3", "--field", f"access_key_id={S3_ID}",
             "--scope", scope, *SEAL)  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = load(work / "sealed-secrets" / "kalshi-archive-s3.yaml")
    assert doc["spec"]["scope"] == scope
    assert (
        unseal(controller_private_key(), doc["spec"]["encryptedData"]["access_key_id"], label)
        == S3_ID.encode()
    )


def test_verify_exit_codes_and_list(
    work: Path, clock: list[datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    check = ("kalshi.yaml", "--from-dir", "sealed-secrets", "-n", "ssmd")
    r = ssmd("key", "verify", *check)
    assert r.exit_code == 1
    assert (
        "✗ archive-s3: not set — run `ssmd key set kalshi archive-s3 --field access_key_id=VALUE"
        in r.output
    )
    assert "✗ kalshi: not set" in r.output

    monkeypatch.setenv("KALSHI_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("KALSHI_PRIVATE_KEY_PATH", str(work / "kalshi.pem"))
    # --from-env: the variables the environment declares (env / fileEnv) map to their fields
    r = ssmd(
        "key",
        "set",
        "kalshi.yaml",
        "kalshi",
        "--from-env",
        "KALSHI_API_KEY_ID,KALSHI_PRIVATE_KEY_PATH",
        *SEAL,
    )
    assert r.exit_code == 0, r.output
    doc = load(work / "sealed-secrets" / "kalshi-kalshi.yaml")
    assert (
        unseal(
            controller_private_key(),
            doc["spec"]["encryptedData"]["private_key"],
            b"ssmd/kalshi-kalshi",
        ).decode()
        == PEM
    )

    r = ssmd("key", "set", "kalshi.yaml", "archive-s3", "--field", f"access_key_id={S3_ID}", *SEAL)
    r = ssmd("key", "verify", *check)
    assert r.exit_code == 1
    assert (
        "✗ archive-s3: missing secret_access_key — run `ssmd key set kalshi archive-s3 --field secret_access_key=VALUE --namespace ssmd`"
        in r.output
    )
    assert "✓ kalshi: set, expires 2026-08-30T12:00:00Z" in r.output

    monkeypatch.setenv("S3_SECRET", S3_SECRET)
    r = ssmd(
        "key",
        "set",
        "kalshi.yaml",
        "archive-s3",
        "--from-env",
        "secret_access_key=S3_SECRET",
        *SEAL,
    )
    assert r.exit_code == 0, r.output
    doc = load(work / "sealed-secrets" / "kalshi-archive-s3.yaml")
    assert set(doc["spec"]["encryptedData"]) == {"access_key_id", "secret_access_key"}  # merged
    assert ssmd("key", "verify", *check).exit_code == 0

    r = ssmd("key", "list", *check)
    lines = r.output.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "REQUIRED", "STATUS", "LAST_ROTATED", "EXPIRES"]
    assert lines[2].split() == [
        "kalshi",
        "api_key",
        "yes",
        "set",
        "2026-06-01T12:00:00Z",
        "2026-08-30T12:00:00Z",
    ]

    clock[0] = NOW + timedelta(days=91)  # kalshi rotates every 90 days, archive-s3 every 180
    r = ssmd("key", "verify", *check)
    assert r.exit_code == 1
    assert "✗ kalshi: expired 2026-08-30T12:00:00Z — run `ssmd key rotate kalshi kalshi" in r.output
    assert "✓ archive-s3" in r.output
    r = ssmd("key", "rotate", "kalshi.yaml", "kalshi", "--field", f"api_key_id={KEY_ID}", *SEAL)
    assert r.exit_code == 1 and "needs new values for every field; missing private_key" in r.output
    r = ssmd("key", "rotate", "kalshi.yaml", "kalshi", "--field", f"api_key_id={KEY_ID}",
             "--from-file", "private_key=kalshi.pem", *SEAL)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert ssmd("key", "verify", *check).exit_code == 0

    r = ssmd("key", "show", "kalshi.yaml", "kalshi", "--from-dir", "sealed-secrets", "-n", "ssmd")
    assert "lastRotated:    2026-08-31T12:00:00Z" in r.output and "required:       yes" in r.output

    r = ssmd("key", "delete", "kalshi.yaml", "archive-s3", "--out", "sealed-secrets", "--yes")
    assert r.exit_code == 0 and not (work / "sealed-secrets" / "kalshi-archive-s3.yaml").exists()
    assert ssmd("key", "verify", *check).exit_code == 1


def test_optional_keys_do_not_fail_verify(work: Path, clock: list[datetime]) -> None:
    env = load(work / "kalshi.yaml")
    env["spec"]["keys"]["archive-s3"]["required"] = False
    env["spec"]["storage"] = {"local": {"path": "./data"}}
    env["spec"]["keys"]["kalshi"]["required"] = False
    (work / "opt.yaml").write_text(yaml.safe_dump(env))
    r = ssmd("key", "verify", "opt.yaml", "--from-dir", "sealed-secrets")
    assert r.exit_code == 0
    assert "○ archive-s3: optional, not set" in r.output


def test_init_prompts_without_echo(work: Path, clock: list[datetime]) -> None:
    answers = f"{S3_ID}\n{S3_SECRET}\n{KEY_ID}\n@kalshi.pem\n"  # keys in name order
    r = ssmd("key", "init", "kalshi.yaml", *SEAL, input=answers)
    assert r.exit_code == 0, r.output
    assert "✓ sealed archive-s3" in r.output and "✓ sealed kalshi" in r.output
    priv = controller_private_key()
    doc = load(work / "sealed-secrets" / "kalshi-kalshi.yaml")
    assert (
        unseal(priv, doc["spec"]["encryptedData"]["private_key"], b"ssmd/kalshi-kalshi").decode()
        == PEM
    )
    assert (
        ssmd("key", "verify", "kalshi.yaml", "--from-dir", "sealed-secrets", "-n", "ssmd").exit_code
        == 0
    )


def test_bad_input_is_one_line_and_never_echoes_values(work: Path, clock: list[datetime]) -> None:
    r = ssmd("key", "set", "kalshi.yaml", "kalshi", "--field", KEY_ID, *SEAL)  # forgot NAME=
    assert r.exit_code == 1 and "--field expects NAME=" in r.output
    r = ssmd("key", "set", "kalshi.yaml", "kalshi", "--field", f"password={KEY_ID}", *SEAL)
    assert r.exit_code == 1 and "has no field(s) password" in r.output
    r = ssmd("key", "set", "kalshi.yaml", "nope", "--field", f"x={KEY_ID}", *SEAL)
    assert r.exit_code == 1 and "does not declare key 'nope'" in r.output
    r = ssmd("key", "set", "kalshi.yaml", "kalshi", "--field", f"api_key_id={KEY_ID}", "--out", "d")
    assert r.exit_code == 1 and "--cert" in r.output
    r = ssmd("key", "set", "kalshi.yaml", "kalshi", "--from-env", "NOT_SET_ANYWHERE", *SEAL)
    assert r.exit_code == 1 and "$NOT_SET_ANYWHERE is not set" in r.output


def test_export_has_metadata_and_references_only(work: Path, clock: list[datetime]) -> None:
    ssmd("key", "set", "kalshi.yaml", "kalshi", "--field", f"api_key_id={KEY_ID}", *SEAL)
    r = ssmd("key", "export", "kalshi.yaml", "-n", "ssmd")
    assert r.exit_code == 0, r.output
    docs = list(yaml.safe_load_all(r.output))
    assert [d["metadata"]["name"] for d in docs] == ["kalshi-archive-s3", "kalshi-kalshi"]
    assert all("encryptedData" not in d["spec"] for d in docs)
    assert (
        docs[1]["metadata"]["annotations"]["ssmd.io/referenced-by"]
        == "spec.feed.credentials=$key:kalshi"
    )
