"""Config -> settings: profiles, overrides, and one clear error per bad key (exit 2, no traceback)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import yaml

from secstack.cli import main
from stacks.config import read_stack_file
from stacks.settings import SecretValue, load
from tests.helpers.shared import REPO

def write_stack(tmp_path, body: str, env: str = "prod", name: str = "t") -> str:
    """The committed stack of `env` with the top-level keys in `body` replaced (each case breaks one thing)."""
    document = yaml.safe_load((REPO / "stacks" / f"Pulumi.{env}.yaml").read_text())
    document["config"].update(yaml.safe_load(textwrap.dedent(body)) or {})
    (tmp_path / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(document))
    return name


def run_cli(tmp_path, capsys, name="t"):
    code = main(["preview", name, "--stacks-dir", str(tmp_path), "--out", str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


BAD_CONFIGS = [
    ("unknown top-level key", "secstack:meshh: {}\n", "secstack:meshh: unknown key; allowed keys:"),
    ("unknown nested key", "secstack:mesh: {mtlsMod: STRICT, jwt: {issuer: i, jwksUri: 'https://i/j', audiences: [a]}}\n", "secstack:mesh.mtlsMod: unknown key; allowed keys: accessLogJson"),
    ("bad enum", "secstack:mesh: {mtlsMode: 'OFF'}\n", "secstack:mesh.mtlsMode: Input should be 'PERMISSIVE' or 'STRICT'"),
    ("wrong type", "secstack:mesh: {istiodReplicas: many}\n", "secstack:mesh.istiodReplicas: Input should be a valid integer"),
    ("missing required key", "secstack:teams: [{name: a, namespaces: [a]}]\n", "secstack:teams[0].owner: required key is missing"),
    ("missing cluster", "secstack:cluster: null\n", "secstack:cluster"),
    ("plain secret", "secstack:secretValues: {stripe-key: sk_live_123}\n", "secstack:secretValues.stripe-key: is plain text but must be a secret"),
    ("prod weakened without reason", "secstack:mesh: {mtlsMode: PERMISSIVE}\n", "secstack:mesh.mtlsMode: 'PERMISSIVE' weakens the prod profile ('STRICT')"),
    ("egress opened in prod", "secstack:mesh: {outboundTrafficPolicy: ALLOW_ANY}\n", "secstack:mesh.outboundTrafficPolicy: 'ALLOW_ANY' weakens the prod profile"),
    ("plain-http JWKS", "secstack:mesh: {jwt: {issuer: i, jwksUri: 'http://idp.example.com/jwks', audiences: [a]}}\n", "secstack:mesh.jwt.jwksUri: must be an https:// URL"),
    ("caller that does not exist", "secstack:teams: [{name: a, owner: me@x.io, namespaces: [a], services: [{name: s, allowFrom: [b/c]}]}]\n", "allowFrom: 'b/c' is not a declared service account"),
    ("namespace owned twice", "secstack:teams: [{name: a, owner: me@x.io, namespaces: [shared]}, {name: b, owner: me@x.io, namespaces: [shared]}]\n", "'shared' is already owned by team 'a'"),
    ("platform namespace", "secstack:teams: [{name: a, owner: me@x.io, namespaces: [istio-system]}]\n", "'istio-system' is a platform namespace"),
    ("jwt rules without issuer", "secstack:mesh: {}\n", "jwtRules: needs secstack:mesh.jwt"),
]


@pytest.mark.parametrize("case,body,message", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_rejected_with_the_key_named(tmp_path, capsys, case, body, message):
    code, output = run_cli(tmp_path, capsys, write_stack(tmp_path, body))
    assert code == 2
    assert message in output
    assert "Traceback" not in output
    assert not (tmp_path / "out").exists(), "nothing may be rendered from a bad config"


def test_missing_and_bad_environment(tmp_path, capsys):
    (tmp_path / "Pulumi.x.yaml").write_text("config:\n  secstack:cluster: {name: c}\n")
    code, output = run_cli(tmp_path, capsys, "x")
    assert code == 2 and "secstack:environment: required key is missing; allowed values: dev, staging, prod" in output
    (tmp_path / "Pulumi.y.yaml").write_text("config:\n  secstack:environment: qa\n")
    code, output = run_cli(tmp_path, capsys, "y")
    assert code == 2 and "secstack:environment: 'qa' is not allowed; allowed values: dev, staging, prod" in output


def test_every_problem_is_reported_at_once(tmp_path, capsys):
    body = "secstack:bogus: 1\nsecstack:mesh: {mtlsMode: PERMISSIVE, istiodReplicas: x}\n"
    code, output = run_cli(tmp_path, capsys, write_stack(tmp_path, body))
    assert code == 2
    for key in ("secstack:bogus", "secstack:mesh.istiodReplicas", "secstack:mesh.mtlsMode"):
        assert key in output


def test_missing_stack_file_and_malformed_yaml(tmp_path, capsys):
    code, output = run_cli(tmp_path, capsys, "nope")
    assert code == 2 and "Pulumi.nope.yaml: no such stack file" in output
    (tmp_path / "Pulumi.broken.yaml").write_text("config:\n  secstack:environment: [dev\n")
    code, output = run_cli(tmp_path, capsys, "broken")
    assert code == 2 and "Pulumi.broken.yaml: not valid YAML" in output and "Traceback" not in output


def committed(env: str, **overrides) -> dict:
    raw = read_stack_file(REPO / "stacks" / f"Pulumi.{env}.yaml")
    raw.update({f"secstack:{k}": v for k, v in overrides.items()})
    return raw


def test_weakening_prod_with_a_reason_is_accepted():
    mesh = {**committed("prod")["secstack:mesh"], "mtlsMode": "PERMISSIVE", "reason": "legacy batch host until 2027-01"}
    settings = load(committed("prod", mesh=mesh))
    assert settings.mesh.mtls_mode == "PERMISSIVE"


def test_dev_may_relax_without_reason_and_profiles_differ():
    dev = load(committed("dev", mesh={**committed("dev")["secstack:mesh"], "mtlsMode": "PERMISSIVE"}))
    prod = load(committed("prod"))
    assert dev.mesh.mtls_mode == "PERMISSIVE"
    assert (dev.mesh.istiod_replicas, prod.mesh.istiod_replicas) == (1, 3)
    assert prod.mesh.outbound_traffic_policy == "REGISTRY_ONLY"


def test_any_stack_name_works(tmp_path, capsys):
    code, output = run_cli(tmp_path, capsys, write_stack(tmp_path, "", env="staging", name="eu-canary"))
    assert code in (0, 1), output
    assert (tmp_path / "out" / "eu-canary" / "plan.json").exists()


def test_secure_values_become_redacted_placeholders(tmp_path):
    path = tmp_path / "Pulumi.s.yaml"
    path.write_text("config:\n  secstack:secretValues:\n    k:\n      secure: v1:abc\n")
    raw = read_stack_file(path)
    value = raw["secstack:secretValues"]["k"]
    assert isinstance(value, SecretValue) and "v1:abc" not in repr(value) and "abc" not in value.reveal()


def test_cli_reports_config_errors_without_traceback_in_a_real_process(tmp_path):
    write_stack(tmp_path, "secstack:mesh: {mtlsMode: 'OFF'}\n")
    result = subprocess.run(
        [sys.executable, "-m", "secstack.cli", "preview", "t", "--stacks-dir", str(tmp_path), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=REPO,
    )
    assert result.returncode == 2
    assert "secstack:mesh.mtlsMode" in result.stderr and "Traceback" not in result.stderr
