"""Every rule folder is complete and its gator suite passes through the regorus engine."""
from __future__ import annotations

import re

import pytest
import yaml

from secstack import gatekeeper
from secstack.gatekeeper_sync import stale_templates
from secstack.policy_suites import check_assertion, run_suite
from tests.helpers.crds import crd_errors

RULE_DIRS = sorted(p for p in gatekeeper.RULES_DIR.iterdir() if p.is_dir() and p.name.startswith(("pss-", "general-")))
RULES = gatekeeper.load_rules()


def test_the_library_has_every_pod_security_control():
    wanted = {
        "K8sPSPPrivilegedContainer", "K8sPSPHostNamespace", "K8sPSPHostNetworkingPorts", "K8sPSPHostFilesystem",
        "K8sPSPCapabilities", "K8sPSPAllowPrivilegeEscalationContainer", "K8sPSPAllowedUsers", "K8sPSPSeccompV2",
        "K8sPSPVolumeTypes", "K8sPSPProcMount", "K8sPSPForbiddenSysctls", "K8sPSPAppArmor", "K8sPSPSELinuxV2",
        "K8sPSPHostProbesLifecycle", "K8sPSPHostProcess",
    }
    assert wanted <= set(RULES)
    assert set(gatekeeper.bundle_kinds("pss-baseline")) < set(gatekeeper.bundle_kinds("pss-restricted"))


@pytest.mark.parametrize("folder", RULE_DIRS, ids=lambda p: p.name)
def test_rule_folder_is_complete(folder):
    samples = folder / "samples"
    assert (folder / "template.yaml").is_file(), f"{folder.name} has no template.yaml"
    assert (folder / "suite.yaml").is_file(), f"{folder.name} has no suite.yaml"
    assert (samples / "constraint.yaml").is_file(), f"{folder.name} has no samples/constraint.yaml"
    assert list(samples.glob("example_disallowed*.yaml")), f"{folder.name} has no disallowed samples"
    assert list(samples.glob("example_allowed*.yaml")), f"{folder.name} has no allowed samples"


@pytest.mark.parametrize("folder", RULE_DIRS, ids=lambda p: p.name)
def test_suite_passes(folder):
    results = run_suite(folder / "suite.yaml")
    failures = [f"{r.test}/{r.case}: {r.problems}" for r in results if not r.ok]
    assert results and not failures
    # the suite exercises what it ships: every disallowed sample is a case that expects violations
    suite = yaml.safe_load((folder / "suite.yaml").read_text())
    used = {c["object"] for t in suite["tests"] for c in t["cases"]}
    for sample in (folder / "samples").glob("example_disallowed*.yaml"):
        assert f"samples/{sample.name}" in used, f"{sample.name} is not used by {folder.name}/suite.yaml"


@pytest.mark.parametrize("folder", [p for p in RULE_DIRS if p.name.startswith("pss-")], ids=lambda p: p.name)
def test_pss_samples_cover_workloads_and_every_container_kind(folder):
    docs = [yaml.safe_load(p.read_text()) for p in (folder / "samples").glob("example_disallowed*.yaml")]
    kinds = {d["kind"] for d in docs}
    assert {"Pod", "Deployment", "CronJob"} <= kinds
    text = "".join(p.read_text() for p in (folder / "samples").glob("example_disallowed*.yaml"))
    per_container = "checked" in RULES[next(k for k, r in RULES.items() if r.folder == folder.name)].template["spec"]["targets"][0]["rego"]
    if per_container:
        assert "initContainers" in text and "ephemeralContainers" in text


@pytest.mark.parametrize("folder", RULE_DIRS, ids=lambda p: p.name)
def test_template_and_constraint_validate_against_gatekeeper_crds(folder):
    template = yaml.safe_load((folder / "template.yaml").read_text())
    assert crd_errors(template) == []
    assert template["metadata"]["name"] == template["spec"]["crd"]["spec"]["names"]["kind"].lower()
    rego = template["spec"]["targets"][0]["rego"]
    assert re.search(rf"^package {template['metadata']['name']}$", rego, re.M)
    assert "import rego.v1" in rego


@pytest.mark.parametrize("kind", sorted(RULES))
def test_rego_compiles_as_v0_with_rego_v1_import_and_as_v1(kind):
    for v0 in (False, True):
        engine = gatekeeper.compile_rule(RULES[kind], rego_v0=v0).clone()
        engine.set_input_json('{"review": {"object": {"kind": "Pod", "spec": {"containers": [{"name": "a"}]}}}, "parameters": {}}')
        assert engine.eval_rule_as_json(f"data.{kind.lower()}.violation")


def test_templates_carry_the_current_shared_libs():
    assert stale_templates() == [], "run `python -m secstack.gatekeeper_sync`"


def test_every_template_accepts_exempt_images_where_it_checks_containers():
    for kind, rule in RULES.items():
        rego = rule.template["spec"]["targets"][0]["rego"]
        if "pods.checked" in rego:
            assert "exemptImages" in rule.parameter_schema.get("properties", {}), kind


@pytest.mark.parametrize("assertion,messages,holds", [
    ({"violations": "yes"}, ["a"], True),
    ({"violations": True}, [], False),
    ({"violations": "no"}, [], True),
    ({"violations": 2, "message": "cap"}, ["cap x", "cap y", "other"], True),
    ({"violations": 1, "message": "cap"}, ["cap x", "cap y"], False),
    ({"violations": "many"}, [], False),
])
def test_gator_assertion_semantics(assertion, messages, holds):
    assert (check_assertion(assertion, messages) is None) is holds
