"""The pack as the Pulumi CLI runs it, and its verdicts in `secstack preview` (JSON and SARIF)."""
from __future__ import annotations

import json
import runpy

import pulumi_policy
import pytest
import sarif_pydantic
import yaml

from policies.crossguard import alicloud, kubernetes, stack
from secstack.cli import main
from tests.helpers.shared import REPO

PACK = REPO / "policies" / "crossguard"


def test_main_builds_a_policy_pack_with_every_policy_without_serving(monkeypatch):
    built = {}

    class Recorder:
        def __init__(self, name, policies, **kwargs):
            built.update(name=name, policies=policies, **kwargs)

    monkeypatch.setattr(pulumi_policy, "PolicyPack", Recorder)
    runpy.run_path(str(PACK / "__main__.py"), run_name="__main__")
    names = [p.name for p in built["policies"]]
    expected = [p.name for module in (kubernetes, alicloud, stack) for p in module.policies()]
    assert built["name"] == "secstack" and names == expected and len(names) == len(set(names))
    assert all(p.severity is not None and p.remediation_steps and p.description for p in built["policies"])


def test_pack_files_are_what_the_cli_expects():
    import yaml

    project = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python" and project["version"]
    assert "pulumi-policy" in (PACK / "requirements.txt").read_text()


@pytest.mark.parametrize("stack_name", ["dev", "staging", "prod"])
def test_config_files_name_every_policy_with_a_valid_level(stack_name):
    from policies.crossguard.catalog import all_meta

    config = json.loads((PACK / "config" / f"{stack_name}.json").read_text())
    assert set(config) == set(all_meta())
    for entry in config.values():
        assert entry["enforcementLevel"] in ("advisory", "mandatory", "disabled")
        assert entry["environment"] == stack_name


def _weakened_prod(directory, overrides: dict) -> str:
    """The committed prod stack with `overrides` merged into its config (secure values kept as they are)."""
    document = yaml.safe_load((REPO / "stacks" / "Pulumi.prod.yaml").read_text())
    for key, value in overrides.items():
        current = document["config"].get(key)
        document["config"][key] = {**current, **value} if isinstance(current, dict) and isinstance(value, dict) else value
    (directory / "Pulumi.prod.yaml").write_text(yaml.safe_dump(document))
    return "prod"


def test_committed_prod_is_clean_and_writes_valid_sarif(tmp_path, capsys):
    code = main(["preview", "prod", "--out", str(tmp_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    sarif = json.loads((tmp_path / "prod" / "verdicts.sarif").read_text())
    sarif_pydantic.Sarif.model_validate(sarif)
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["tool"]["driver"]["name"] == "secstack"


def test_permissive_mesh_in_prod_with_a_reason_fails_the_preview(tmp_path, capsys):
    stacks_dir = tmp_path / "stacks"
    stacks_dir.mkdir()
    _weakened_prod(stacks_dir, {"secstack:mesh": {"mtlsMode": "PERMISSIVE", "reason": "legacy batch host"}})
    code = main(["preview", "prod", "--stacks-dir", str(stacks_dir), "--out", str(tmp_path / "out"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert "crossguard/mesh-mtls-strict-in-prod" in out
    verdicts = json.loads((tmp_path / "out" / "prod" / "verdicts.json").read_text())["verdicts"]
    [mtls] = [v for v in verdicts if v["policy"] == "crossguard/mesh-mtls-strict-in-prod"]
    assert mtls["level"] == "mandatory" and mtls["severity"] == "critical" and "PERMISSIVE" in mtls["message"]
    assert mtls["file"] == "manifests/istio-system.peerauthentication.default.yaml"

    sarif = json.loads((tmp_path / "out" / "prod" / "verdicts.sarif").read_text())
    sarif_pydantic.Sarif.model_validate(sarif)
    run = sarif["runs"][0]
    [result] = [r for r in run["results"] if r["ruleId"] == "crossguard/mesh-mtls-strict-in-prod"]
    assert result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "manifests/istio-system.peerauthentication.default.yaml"
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == "crossguard/mesh-mtls-strict-in-prod"
