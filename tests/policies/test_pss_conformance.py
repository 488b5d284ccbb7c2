"""Conformance of the Pod Security Standards rules.

1. gatekeeper-library: each PSS rule with an upstream counterpart runs the upstream suite (samples and
   constraints from ../shared/conformance/gatekeeper-library) against our template and gives the same verdicts.
   No parameter mapping is needed: our templates accept the upstream parameters as they are.
2. Pod Security Admission fixtures (k8s.io/pod-security-admission v0.36.2, level v1.35): with bundle pss-restricted
   every restricted `fail` fixture is denied and every `pass` fixture admitted; pss-baseline likewise for baseline.
"""
from __future__ import annotations

import json

import pytest
import yaml

from secstack import gatekeeper
from secstack.policy_suites import run_suite
from tests.helpers.shared import require_shared

RULES = gatekeeper.load_rules()
PSS_KINDS = sorted(k for k, r in RULES.items() if r.folder.startswith("pss-"))
# Upstream templates without a counterpart here, and why (also in policies/gatekeeper/README.md).
NO_COUNTERPART = {
    "K8sPSPSeccomp": "seccomp annotations were removed in Kubernetes 1.27; K8sPSPSeccompV2 covers the fields",
    "K8sPSPFlexVolumes": "FlexVolume is deprecated and not a PSS control; pss-volume-types denies flexVolume in restricted",
    "K8sPSPFSGroup": "fsGroup ranges are a PodSecurityPolicy feature, not a Pod Security Standards control",
}
# Fixtures we deliberately judge differently from Pod Security Admission: none.
DELIBERATELY_DIFFERENT: dict[str, str] = {}


def upstream_psp_suites() -> dict[str, object]:
    root = require_shared("conformance", "gatekeeper-library", "library", "pod-security-policy")
    found = {}
    for schema in sorted(root.glob("*/parameters-schema.json")):
        found[json.loads(schema.read_text())["constraintKind"]] = schema.parent
    return found


def test_every_pss_rule_is_matched_to_upstream_or_listed():
    upstream = upstream_psp_suites()
    for kind in upstream:
        assert kind in RULES or kind in NO_COUNTERPART, f"upstream {kind} has neither a rule nor a reason"
    readme = (gatekeeper.RULES_DIR / "README.md").read_text()
    for kind in NO_COUNTERPART:
        assert kind in readme


@pytest.mark.parametrize("kind", PSS_KINDS)
def test_gatekeeper_library_suite_gives_the_same_verdicts(kind):
    upstream = upstream_psp_suites()
    assert kind in upstream, f"{kind} has no upstream counterpart in ../shared; every PSS rule here has one"
    results = run_suite(upstream[kind] / "suite.yaml")
    failures = [f"{r.test}/{r.case}: {r.problems}" for r in results if not r.ok]
    print(f"{kind}: {len(results) - len(failures)}/{len(results)} upstream cases agree")
    assert results and not failures


@pytest.mark.parametrize("kind", PSS_KINDS)
def test_upstream_parameters_fit_our_schema(kind):
    import jsonschema

    upstream = upstream_psp_suites()[kind]
    schema = RULES[kind].parameter_schema
    for constraint in upstream.glob("samples/*/constraint.yaml"):
        params = (yaml.safe_load(constraint.read_text()).get("spec") or {}).get("parameters") or {}
        jsonschema.validate(params, schema)
        assert set(params) <= set(schema.get("properties", {})), constraint


def _fixtures(level: str, verdict: str):
    return sorted(require_shared("conformance", "pod-security-standards", level, "v1.35", verdict).glob("*.yaml"))


@pytest.mark.parametrize("level,bundle", [("baseline", "pss-baseline"), ("restricted", "pss-restricted")])
def test_pod_security_admission_fixtures(level, bundle):
    engine = gatekeeper.Engine()
    constraints = gatekeeper.bundle_constraints(bundle)
    counts, wrong = {}, []
    for verdict in ("pass", "fail"):
        fixtures = _fixtures(level, verdict)
        agreed = 0
        for path in fixtures:
            violations = engine.evaluate(yaml.safe_load(path.read_text()), constraints)
            denied = any(v.enforcement_action == "deny" for v in violations)
            if denied == (verdict == "fail") or path.name in DELIBERATELY_DIFFERENT:
                agreed += 1
            else:
                wrong.append(f"{verdict}/{path.name}: {[v.message for v in violations]}")
        counts[verdict] = (agreed, len(fixtures))
    print(f"{bundle} vs PSA {level}/v1.35: fail denied {counts['fail'][0]}/{counts['fail'][1]}, "
          f"pass admitted {counts['pass'][0]}/{counts['pass'][1]}, deliberately different {len(DELIBERATELY_DIFFERENT)}")
    assert not wrong, "\n".join(wrong)
    expected = {"baseline": {"pass": 15, "fail": 34}, "restricted": {"pass": 23, "fail": 76}}[level]
    assert {k: v[1] for k, v in counts.items()} == expected, "the upstream fixture set changed"


def test_restricted_fail_fixtures_are_denied_by_the_right_rule():
    """Each fixture family is caught by the rule for that control, not by accident through another rule."""
    expected = {
        "privileged": "K8sPSPPrivilegedContainer", "hostnamespaces": ("K8sPSPHostNamespace", "K8sPSPHostNetworkingPorts"),
        "hostports": "K8sPSPHostNetworkingPorts", "hostpathvolumes": "K8sPSPHostFilesystem",
        "capabilities_baseline": "K8sPSPCapabilities", "capabilities_restricted": "K8sPSPCapabilities",
        "allowprivilegeescalation": "K8sPSPAllowPrivilegeEscalationContainer", "runasnonroot": "K8sPSPAllowedUsers",
        "runasuser": "K8sPSPAllowedUsers", "seccompprofile_baseline": "K8sPSPSeccompV2",
        "seccompprofile_restricted": "K8sPSPSeccompV2", "restrictedvolumes": "K8sPSPVolumeTypes",
        "procmount": "K8sPSPProcMount", "procmount_restricted": "K8sPSPProcMount", "sysctls": "K8sPSPForbiddenSysctls",
        "apparmorprofile": "K8sPSPAppArmor", "selinuxoptions": "K8sPSPSELinuxV2",
        "hostprobesandhostlifecycle": "K8sPSPHostProbesLifecycle", "windowshostprocess": "K8sPSPHostProcess",
    }
    engine = gatekeeper.Engine()
    constraints = gatekeeper.bundle_constraints("pss-restricted")
    for path in _fixtures("restricted", "fail"):
        family = path.stem.rstrip("0123456789")
        kinds = {v.kind for v in engine.evaluate(yaml.safe_load(path.read_text()), constraints)}
        want = expected[family]
        want = (want,) if isinstance(want, str) else want
        assert kinds & set(want), f"{path.name}: denied by {kinds}, expected one of {want}"
