"""Envelope encryption and the passphrase command, with the real Alibaba Cloud SDK against a local fake KMS."""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from secstack import cli
from stacks.config import STACKS_DIR
from tests.helpers.fake_kms import FakeKms, sdk_environment

CONFIG_KEY = "alias/secstack/dev/config"
PLAINTEXT = b"database:\n  password: hunter2-correct-horse\n"


@pytest.fixture
def kms(tmp_path, monkeypatch):
    with FakeKms() as fake:
        fake.add_key(CONFIG_KEY)
        fake.add_key("alias/secstack/prod/config")
        for name, value in sdk_environment(fake, str(tmp_path / "home")).items():
            monkeypatch.setenv(name, value)
        yield fake


def run(*argv: str) -> int:
    return cli.main(list(argv))


def encrypt(tmp_path, key: str = CONFIG_KEY):
    source = tmp_path / "secrets.yaml"
    source.write_bytes(PLAINTEXT)
    assert run("config", "encrypt", str(source), "--key", key) == 0
    return tmp_path / "secrets.yaml.kms.json"


def test_round_trip_through_kms(kms, tmp_path):
    envelope_path = encrypt(tmp_path)
    envelope = json.loads(envelope_path.read_text())
    assert envelope["format"] == "secstack-kms-envelope/v1" and envelope["key"] == CONFIG_KEY
    assert envelope["keyId"] == kms.aliases[CONFIG_KEY]
    assert PLAINTEXT not in envelope_path.read_bytes()
    out = tmp_path / "decrypted.yaml"
    assert run("config", "decrypt", str(envelope_path), "--key", CONFIG_KEY, "--out", str(out)) == 0
    assert out.read_bytes() == PLAINTEXT
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert [a for a, _ in kms.calls] == ["GenerateDataKey", "Decrypt"]
    assert kms.calls[0][1]["KeyId"] == CONFIG_KEY and kms.calls[0][1]["KeySpec"] == "AES_256"


def test_plaintext_data_key_is_never_written_to_disk(kms, tmp_path):
    envelope_path = encrypt(tmp_path)
    run("config", "decrypt", str(envelope_path), "--key", CONFIG_KEY, "--out", str(tmp_path / "out"))
    (data_key,) = kms.issued_data_keys
    forms = [data_key, base64.b64encode(data_key), data_key.hex().encode()]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(form in content for form in forms), path


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "key", "keyId", "encryptedDataKey"])
def test_tampered_envelope_fails_clearly(kms, tmp_path, capsys, field):
    envelope_path = encrypt(tmp_path)
    envelope = json.loads(envelope_path.read_text())
    if field in ("ciphertext", "nonce"):
        raw = bytearray(base64.b64decode(envelope[field]))
        raw[0] ^= 0x01
        envelope[field] = base64.b64encode(bytes(raw)).decode()
    elif field == "encryptedDataKey":
        second = tmp_path / "other.txt"
        second.write_bytes(b"another file")
        run("config", "encrypt", str(second), "--key", CONFIG_KEY)
        envelope[field] = json.loads((tmp_path / "other.txt.kms.json").read_text())[field]
    else:
        envelope[field] = envelope[field] + "x"
    envelope_path.write_text(json.dumps(envelope))
    capsys.readouterr()
    code = run("config", "decrypt", str(envelope_path), "--key", envelope["key"], "--out", str(tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {envelope_path}:") and "Traceback" not in err
    assert any(word in err for word in ("tampered", "wrong key", "authentication failed")), err
    assert not (tmp_path / "out").exists()


def test_wrong_key_is_named(kms, tmp_path, capsys):
    envelope_path = encrypt(tmp_path)
    capsys.readouterr()
    assert run("config", "decrypt", str(envelope_path), "--key", "alias/secstack/prod/config") == 2
    err = capsys.readouterr().err
    assert f"wrong key: the file was encrypted with {CONFIG_KEY}, not alias/secstack/prod/config" in err


@pytest.mark.parametrize(
    "key, code, words",
    [
        ("alias/denied", "Forbidden.RAM", "RAM policy does not allow"),
        ("alias/throttled", "Rejected.Throttling", "retry with backoff"),
        ("alias/disabled", "Rejected.Disabled", "the key is disabled"),
        ("alias/nope", "Forbidden.KeyNotFound", "no such key"),
    ],
)
def test_kms_errors_surface_as_clear_messages(kms, tmp_path, capsys, key, code, words):
    source = tmp_path / "f.txt"
    source.write_text("x")
    assert run("config", "encrypt", str(source), "--key", key) == 2
    err = capsys.readouterr().err
    assert f"KMS GenerateDataKey failed: {code}" in err and words in err and "Traceback" not in err
    assert not (tmp_path / "f.txt.kms.json").exists()


def test_wrong_credentials_are_reported_by_a_real_process(kms, tmp_path):
    # A fresh process: the SDK's default chain caches the provider it found first.
    env = {**os.environ, **sdk_environment(kms, str(tmp_path / "home")), "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-someone-else"}
    source = tmp_path / "f.txt"
    source.write_text("x")
    done = subprocess.run([str(Path(sys.executable).with_name("secstack")), "config", "encrypt", str(source), "--key", CONFIG_KEY],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "InvalidAccessKeyId.NotFound" in done.stderr and "Traceback" not in done.stderr


def test_missing_file_and_not_an_envelope(kms, tmp_path, capsys):
    assert run("config", "encrypt", str(tmp_path / "absent"), "--key", CONFIG_KEY) == 2
    assert "cannot read" in capsys.readouterr().err
    junk = tmp_path / "junk.json"
    junk.write_text("not json")
    assert run("config", "decrypt", str(junk), "--key", CONFIG_KEY) == 2
    assert "not a JSON envelope" in capsys.readouterr().err


def test_passphrase_comes_from_secrets_manager(kms, tmp_path, capsys):
    kms.secrets["secstack/dev/pulumi-passphrase"] = "correct horse battery staple"
    assert run("passphrase", "dev") == 0
    out = capsys.readouterr().out
    assert out == "correct horse battery staple"
    assert kms.calls[-1] == ("GetSecretValue", {"SecretName": "secstack/dev/pulumi-passphrase"})


@pytest.mark.parametrize("secret, code", [("denied", "Forbidden.RAM"), ("throttled", "Rejected.Throttling"), ("missing", "Forbidden.ResourceNotFound")])
def test_passphrase_errors(kms, tmp_path, capsys, secret, code):
    stacks = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, stacks, ignore=shutil.ignore_patterns("*.py", "__pycache__", "settings"))
    path = stacks / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("passphraseSecretName: secstack/dev/pulumi-passphrase", f"passphraseSecretName: {secret}"))
    assert run("passphrase", "dev", "--stacks-dir", str(stacks)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"secret '{secret}' (secstack:secrets.passphraseSecretName)" in captured.err and code in captured.err
