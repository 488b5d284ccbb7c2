"""secstack:admission: profiles per environment, and bad config rejected with exit 2 naming the key."""
from __future__ import annotations

import copy

import pytest
import yaml

from secstack.admission_constraints import constraints_for, enforcement_of
from secstack.cli import main
from secstack.gatekeeper import load_rules
from secstack.preview import load_stack
from tests.helpers.shared import REPO


def stack_with_admission(tmp_path, admission: dict, env: str = "prod", replace: bool = False) -> str:
    """A copy of the committed stack file with secstack:admission merged (or replaced)."""
    document = yaml.safe_load((REPO / "stacks" / f"Pulumi.{env}.yaml").read_text())
    section = document["config"].setdefault("secstack:admission", {})
    if replace:
        document["config"]["secstack:admission"] = admission
    else:
        section.update(copy.deepcopy(admission))
    (tmp_path / "Pulumi.t.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return "t"


def preview_cli(tmp_path, capsys, name="t"):
    code = main(["preview", name, "--stacks-dir", str(tmp_path), "--out", str(tmp_path / "out"), "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _typed_parameter():
    """(kind, parameter, wrong value) for a rule whose schema types a parameter as an array."""
    for kind, rule in sorted(load_rules().items()):
        for name, schema in (rule.parameter_schema.get("properties") or {}).items():
            if schema.get("type") == "array" and name != "exemptImages":
                return kind, name
    raise AssertionError("no rule with an array parameter")


KIND, PARAM = _typed_parameter()

BAD = [
    ("unknown rule kind", {"rules": {"K8sNoSuchRule": {"enabled": True}}},
     "secstack:admission.rules.K8sNoSuchRule: unknown rule kind 'K8sNoSuchRule'; known kinds:"),
    ("parameter of the wrong type", {"rules": {KIND: {"parameters": {PARAM: 5}}}},
     f"secstack:admission.rules.{KIND}.parameters.{PARAM}: 5 is not of type 'array'"),
    ("parameter the template does not define", {"rules": {KIND: {"parameters": {"noSuchParameter": 1}}}},
     f"secstack:admission.rules.{KIND}.parameters: Additional properties are not allowed ('noSuchParameter'"),
    ("exemption without reason", {"exemptions": [{"rule": "K8sAllowedRepos", "images": ["docker.io/x:*"]}]},
     "secstack:admission.exemptions[0].reason: required key is missing"),
    ("exemption with a blank reason", {"exemptions": [{"rule": "K8sAllowedRepos", "images": ["docker.io/x:*"], "reason": "   "}]},
     "secstack:admission.exemptions[0].reason: must say why the rule cannot apply"),
    ("exemption of an unknown rule", {"exemptions": [{"rule": "K8sNope", "namespaces": ["orders"], "reason": "legacy batch jobs, ticket OPS-1"}]},
     "secstack:admission.exemptions[0].rule: unknown rule kind 'K8sNope'"),
    ("malformed date", {"exemptions": [{"rule": "K8sAllowedRepos", "namespaces": ["orders"], "reason": "legacy batch jobs, ticket OPS-1", "expires": "2026-13-01"}]},
     "secstack:admission.exemptions[0].expires: Input should be a valid date"),
    ("exemption with neither scope", {"exemptions": [{"rule": "K8sAllowedRepos", "reason": "legacy batch jobs, ticket OPS-1"}]},
     "secstack:admission.exemptions[0]: give either `namespaces` or `images`"),
    ("image glob in the middle", {"exemptions": [{"rule": "K8sAllowedRepos", "images": ["docker.io/*/proxy"], "reason": "legacy batch jobs, ticket OPS-1"}]},
     "secstack:admission.exemptions[0].images: 'docker.io/*/proxy' is not an image or image prefix"),
    ("bad enforcement action", {"enforcementAction": "block"},
     "secstack:admission.enforcementAction: Input should be 'dryrun', 'warn' or 'deny'"),
    ("prod weakened without reason", {"enforcementAction": "warn"},
     "secstack:admission.enforcementAction: 'warn' weakens the prod profile ('deny')"),
    ("prod bundle dropped", {"bundles": ["pss-baseline", "general"]},
     "secstack:admission.bundles: ['pss-baseline', 'general'] weakens the prod profile"),
    ("prod digests off", {"requireImageDigests": False},
     "secstack:admission.requireImageDigests: False weakens the prod profile (True)"),
    ("prod rule switched off", {"rules": {"K8sPSPPrivilegedContainer": {"enabled": False}}},
     "secstack:admission.rules: "),
    ("prod namespace excluded", {"excludedNamespaces": ["orders"]},
     "secstack:admission.excludedNamespaces: ['orders'] weakens the prod profile"),
    ("prod webhook fail-open", {"webhookFailurePolicy": "Ignore"},
     "secstack:admission.webhookFailurePolicy: 'Ignore' weakens the prod profile ('Fail')"),
]


@pytest.mark.parametrize("case,admission,message", BAD, ids=[c[0] for c in BAD])
def test_bad_admission_config_exits_2_naming_the_key(tmp_path, capsys, case, admission, message):
    code, output = preview_cli(tmp_path, capsys, stack_with_admission(tmp_path, admission))
    assert code == 2, output
    assert message in output
    assert "Traceback" not in output
    assert not (tmp_path / "out").exists()


def test_prod_can_be_weakened_with_a_reason(tmp_path):
    stack_with_admission(tmp_path, {"enforcementAction": "warn", "reason": "INC-88: rollout of the new PSS rules, until 2027-01-15"})
    settings, _ = load_stack("t", tmp_path)
    assert {c.enforcement_action for c in constraints_for(settings)} == {"warn"}


@pytest.mark.parametrize("stack,action,digests", [("dev", "warn", False), ("staging", "warn", False), ("prod", "deny", True)])
def test_profiles(stack, action, digests):
    settings, _ = load_stack(stack)
    assert settings.admission.enforcement_action == action
    assert settings.admission.require_image_digests is digests
    assert enforcement_of(settings, "K8sPSPPrivilegedContainer") == action  # baseline: enforced everywhere
    assert enforcement_of(settings, "K8sPSPAllowedUsers") == action  # restricted: deny in prod, warn elsewhere
    assert (enforcement_of(settings, "K8sImageDigests") is not None) is digests


def test_staging_at_deny_keeps_restricted_only_rules_at_warn(tmp_path):
    stack_with_admission(tmp_path, {"enforcementAction": "deny"}, env="staging")
    settings, _ = load_stack("t", tmp_path)
    assert enforcement_of(settings, "K8sPSPPrivilegedContainer") == "deny"
    assert enforcement_of(settings, "K8sPSPAllowedUsers") == "warn"
    capabilities = [c for c in constraints_for(settings) if c.kind == "K8sPSPCapabilities"]
    # baseline parameters at deny, restricted ones (drop ALL) reported at warn
    assert {(c.name, c.enforcement_action) for c in capabilities} == {("pss-capabilities", "deny"), ("pss-capabilities-advisory", "warn")}
    strict = next(c for c in capabilities if c.enforcement_action == "warn")
    assert strict.parameters["requiredDropCapabilities"] == ["ALL"]


def test_rule_overrides_enable_disable_and_set_parameters(tmp_path):
    stack_with_admission(tmp_path, {"rules": {
        "K8sImageDigests": {"enabled": True},
        "K8sRequiredProbes": {"enforcementAction": "dryrun"},
        "K8sBlockNodePort": {"enabled": False},
    }}, env="dev")
    settings, _ = load_stack("t", tmp_path)
    by_kind = {c.kind: c for c in constraints_for(settings)}
    assert by_kind["K8sImageDigests"].enforcement_action == "warn"
    assert by_kind["K8sRequiredProbes"].enforcement_action == "dryrun"
    assert "K8sBlockNodePort" not in by_kind


def test_exemptions_become_exempt_images_and_excluded_namespaces(tmp_path):
    stack_with_admission(tmp_path, {"exemptions": [
        {"rule": "K8sRequiredLabels", "namespaces": ["orders"], "reason": "legacy batch jobs, ticket OPS-1", "expires": "2030-01-31"},
        {"rule": "K8sDisallowedTags", "images": ["registry.cn-hangzhou.aliyuncs.com/shop/tool:*"], "reason": "vendor tool ships :latest only"},
    ]}, env="dev", replace=False)
    settings, _ = load_stack("t", tmp_path)
    by_kind = {c.kind: c for c in constraints_for(settings)}
    assert "orders" in by_kind["K8sRequiredLabels"].match["excludedNamespaces"]
    assert "orders" not in by_kind["K8sDisallowedTags"].match["excludedNamespaces"]
    assert by_kind["K8sDisallowedTags"].parameters["exemptImages"] == ["registry.cn-hangzhou.aliyuncs.com/shop/tool:*"]
    (recorded,) = by_kind["K8sRequiredLabels"].exemptions
    assert recorded == {"namespaces": ["orders"], "reason": "legacy batch jobs, ticket OPS-1", "expires": "2030-01-31"}
