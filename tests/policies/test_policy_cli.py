"""`secstack policy test` and `secstack policy check`: exit codes 0/1/2, clear errors, JSON output."""
from __future__ import annotations

import json

import yaml

from secstack import gatekeeper
from secstack.cli import main

SAMPLES = gatekeeper.RULES_DIR / "pss-privileged-container" / "samples"


def test_policy_test_runs_every_suite(capsys):
    assert main(["policy", "test"]) == 0
    out = capsys.readouterr().out
    for rule in gatekeeper.load_rules().values():
        assert f"ok   {rule.folder}:" in out
    assert " passed, 0 failed" in out


def test_policy_test_fails_on_a_broken_suite(tmp_path, capsys):
    import shutil

    rules = tmp_path / "rules"
    shutil.copytree(gatekeeper.RULES_DIR / "pss-privileged-container", rules / "pss-privileged-container")
    shutil.copytree(gatekeeper.RULES_DIR / "lib", rules / "lib")
    suite = yaml.safe_load((rules / "pss-privileged-container" / "suite.yaml").read_text())
    suite["tests"][0]["cases"][0]["assertions"] = [{"violations": 1, "message": "no such message"}]
    (rules / "pss-privileged-container" / "suite.yaml").write_text(yaml.safe_dump(suite))
    shutil.copytree(gatekeeper.RULES_DIR / "pss-capabilities", rules / "pss-capabilities")
    (rules / "pss-capabilities" / "suite.yaml").unlink()
    assert main(["policy", "test", "--rules-dir", str(rules)]) == 1
    out = capsys.readouterr().out
    assert "FAIL pss-privileged-container" in out and "no such message" in out
    assert "FAIL pss-capabilities: no suite.yaml" in out


def test_check_clean_and_violating_manifests(tmp_path, capsys):
    allowed = SAMPLES / "example_allowed_privileged_false.yaml"
    assert main(["policy", "check", str(allowed), "--bundle", "pss-restricted"]) == 0
    bad = SAMPLES / "example_disallowed_deployment.yaml"
    assert main(["policy", "check", str(bad), "--bundle", "pss-baseline"]) == 1
    out = capsys.readouterr().out
    assert "DENY" in out and "Deployment apps/privileged-container-deploy" in out and "pss-privileged-container" in out


def test_check_directories_and_multi_document_files(tmp_path, capsys):
    docs = [yaml.safe_load(p.read_text()) for p in sorted(SAMPLES.glob("example_disallowed_*.yaml"))]
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "all.yaml").write_text(yaml.safe_dump_all(docs))
    (tmp_path / "notes.txt").write_text("not yaml: [")
    assert main(["policy", "check", str(tmp_path), "--bundle", "pss-baseline", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["objects"] == len(docs)
    assert {v["document"] for v in report["violations"]} == set(range(len(docs)))
    assert all(v["constraint"] == "pss-privileged-container" and v["enforcementAction"] == "deny"
               for v in report["violations"])
    assert report["denied"] == len(report["violations"])


def test_json_report_of_a_clean_file(capsys):
    assert main(["policy", "check", str(SAMPLES / "example_allowed_deployment.yaml"), "--bundle", "pss-restricted",
                 "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"objects": 1, "constraints": 15, "denied": 0, "violations": []}


def test_malformed_yaml_names_file_and_document(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\nkind: Pod\nmetadata: {name: [x\n")
    assert main(["policy", "check", str(path), "--bundle", "general"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: document 1: malformed YAML" in err and "Traceback" not in err


def test_non_object_document_and_missing_path(tmp_path, capsys):
    path = tmp_path / "list.yaml"
    path.write_text("---\n- just\n- a list\n")
    assert main(["policy", "check", str(path)]) == 2
    assert f"{path}: document 0: expected a Kubernetes object" in capsys.readouterr().err
    assert main(["policy", "check", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_unknown_bundle_and_exclusive_options(capsys):
    assert main(["policy", "check", str(SAMPLES), "--bundle", "nope"]) == 2
    assert "unknown bundle 'nope'" in capsys.readouterr().err
    assert main(["policy", "check", str(SAMPLES), "--bundle", "general", "--stack", "prod"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_warn_only_violations_exit_zero(tmp_path, monkeypatch, capsys):
    from secstack.commands import policy

    warn = [gatekeeper.Constraint(kind="K8sPSPPrivilegedContainer", name="priv", enforcement_action="warn")]
    monkeypatch.setattr(policy, "constraints_for", lambda args: warn)
    assert main(["policy", "check", str(SAMPLES / "example_disallowed_privileged.yaml")]) == 0
    assert "WARN" in capsys.readouterr().out


def test_stack_option_reports_a_missing_admission_module(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "secstack.admission_constraints", None)
    assert main(["policy", "check", str(SAMPLES), "--stack", "prod"]) == 2
    assert "--stack needs the admission constraints" in capsys.readouterr().err


def test_constraint_parameters_of_the_wrong_type_exit_2(monkeypatch, capsys):
    from secstack.commands import policy

    bad = [gatekeeper.Constraint(kind="K8sPSPCapabilities", name="caps", parameters={"allowedCapabilities": "ALL"})]
    monkeypatch.setattr(policy, "constraints_for", lambda args: bad)
    assert main(["policy", "check", str(SAMPLES / "example_disallowed_privileged.yaml")]) == 2
    err = capsys.readouterr().err
    assert "constraint K8sPSPCapabilities/caps has invalid parameters" in err
    assert "parameters.allowedCapabilities: expected array" in err
