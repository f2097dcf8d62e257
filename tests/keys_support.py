"""Shared by the key tests: the test controller key pair, an independent unsealer, and a
guard that fails a test when a registered secret value shows up in its logs or output."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .support import FIXTURES, ROOT

TEST_KEY = FIXTURES / "sealed-secrets-test-only.key"
TEST_CERT = ROOT / "sealed-secrets" / "test-cert.pem"
# Every secret value a test uses; none may appear in any captured log or output.
SECRETS: set[str] = set()


def secret(value: str) -> str:
    """Register ``value`` (and, for a PEM, each of its base64 lines) as must-never-appear."""
    SECRETS.add(value)
    SECRETS.update(line for line in value.splitlines() if len(line) >= 32)
    return value


def controller_private_key() -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(TEST_KEY.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def unseal(private_key: rsa.RSAPrivateKey, sealed_b64: str, label: bytes) -> bytes:
    """The controller's HybridDecrypt, re-derived from its documentation (not from ssmd):
    uint16 BE length || RSA-OAEP(SHA-256, label) session key || AES-256-GCM, zero nonce."""
    blob = base64.b64decode(sealed_b64)
    n = int.from_bytes(blob[:2], "big")
    wrapped_key, body = blob[2 : 2 + n], blob[2 + n :]
    session_key = private_key.decrypt(
        wrapped_key,
        padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=label
        ),
    )
    assert len(session_key) == 32  # AES-256
    ciphertext, tag = body[:-16], body[-16:]  # GCM appends a 16-byte tag
    dec = Cipher(algorithms.AES(session_key), modes.GCM(b"\x00" * 12, tag)).decryptor()
    return dec.update(ciphertext) + dec.finalize()


@pytest.fixture(autouse=True)
def no_secret_leaks(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> Iterator[None]:
    """Everything logged (any logger, DEBUG and up) and written to stdout/stderr during the
    test is searched for every registered secret value afterwards."""
    caplog.set_level(logging.DEBUG)
    yield
    out, err = capfd.readouterr()
    texts = [out, err]
    # At teardown caplog.text/records are the teardown phase's: read the earlier phases.
    for rec in [*caplog.get_records("setup"), *caplog.get_records("call")]:
        texts.append(rec.getMessage())
        if rec.exc_info and rec.exc_info[1] is not None:
            texts.append(logging.Formatter().formatException(rec.exc_info))
    blob = "\n".join(texts)
    leaked = [s for s in SECRETS if s in blob]
    assert not leaked, f"{len(leaked)} secret value(s) appeared in logs/output"


def assert_clean(*texts: str) -> None:
    """No registered secret value in these texts (CLI output captured by CliRunner, ...)."""
    blob = "\n".join(texts)
    leaked = [s for s in SECRETS if s in blob]
    assert not leaked, f"{len(leaked)} secret value(s) appeared in output"


async def run_cli(cwd: Path, *args: str) -> tuple[int, str]:
    """``ssmd ARGS`` in this process (no interpreter start-up), in a worker thread so the
    test's loop keeps serving the emulator; the CLI's own ``asyncio.run`` gets that thread.
    The output is checked for secret values."""
    import asyncio
    import os

    from click.testing import CliRunner

    from ssmd.cli.main import cli

    def invoke() -> tuple[int, str]:
        old = Path.cwd()
        os.chdir(cwd)  # ENV by name: environments/NAME.yaml is looked up relative to here
        try:
            r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        finally:
            os.chdir(old)
        return r.exit_code, r.output

    code, out = await asyncio.to_thread(invoke)
    assert_clean(out)
    return code, out
