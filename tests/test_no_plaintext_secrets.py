"""Render every stack with known plaintext secret values and look for them everywhere the preview records."""
from __future__ import annotations

import functools

import pytest

from secstack import preview as preview_mod
from secstack.capture import is_secret

MARK = "PLAINTEXT-"


@functools.cache
def revealed(stack: str) -> preview_mod.Preview:
    return preview_mod.run(stack, reveal=lambda name, ciphertext: f"{MARK}{name}", checks=False)


def unmarked_plaintext(value, path=""):
    """Paths of strings carrying a test plaintext outside a secret marker."""
    if is_secret(value):
        return []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in unmarked_plaintext(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unmarked_plaintext(v, f"{path}[{i}]")]
    return [path] if isinstance(value, str) and MARK in value else []


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_no_secret_value_appears_unmarked(stack, tmp_path):
    preview = revealed(stack)
    names = sorted(preview.settings.secret_values)
    assert {"orders-db-password", "payments-stripe-api-key"} <= set(names)
    # The values did reach the resources (so the scan below can fail): as secrets only.
    plain = "\n".join(repr(r.plain_inputs()) for r in preview.resources)
    for name in ("orders-db-password", "payments-stripe-api-key"):
        assert f"{MARK}{name}" in plain
    leaks = [(r.type, r.name, p) for r in preview.resources for p in unmarked_plaintext(r.inputs)]
    assert leaks == []
    target = preview_mod.write(preview, tmp_path)
    for path in target.rglob("*"):
        if path.is_file():
            assert MARK not in path.read_text(), path


def test_rds_secret_wraps_the_password_as_a_secret():
    preview = revealed("prod")
    (db,) = [r for r in preview.of_type("alicloud:kms/secret:Secret") if r.name == "orders-db-password"]
    assert is_secret(db.inputs["secretData"])
    assert db.plain_inputs()["secretData"] == '{"Accounts": [{"AccountName": "orders", "AccountPassword": "PLAINTEXT-orders-db-password"}]}'
