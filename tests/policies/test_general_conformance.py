"""gatekeeper-library conformance of the general-* rules: every upstream suite case and every upstream
example_allowed*/example_disallowed*/disallowed_* sample gives the same verdict against our template, and every
upstream constraint's parameters validate against our parameter schema. Deviations: policies/gatekeeper/README.md."""
from __future__ import annotations

import json

import jsonschema
import pytest

from secstack.gatekeeper import Engine, load_rules
from tests.helpers.crds import to_json_schema
from tests.policies.conformance_helpers import (
    case_failures, load_yaml, mapped, messages, suite_cases, unwrap, upstream_template_dir,
)

# upstream template folder -> our rule folder
COUNTERPARTS = {
    "general/allowedrepos": "general-allowed-repos",
    "general/disallowedtags": "general-disallowed-tags",
    "general/imagedigests": "general-image-digests",
    "general/requiredlabels": "general-required-labels",
    "general/containerlimits": "general-container-limits",
    "general/containerrequests": "general-container-requests",
    "general/requiredprobes": "general-required-probes",
    "general/block-nodeport-services": "general-block-nodeport",
    "general/block-loadbalancer-services": "general-block-loadbalancer",
    "general/httpsonly": "general-https-only",
    "general/automount-serviceaccount-token": "general-block-automount-token",
    "pod-security-policy/read-only-root-filesystem": "general-read-only-root-filesystem",
}
IDS = list(COUNTERPARTS)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def _rule_by_folder(folder: str):
    return next(rule for rule in load_rules().values() if rule.folder == folder)


@pytest.mark.parametrize("upstream", IDS)
def test_same_constraint_kind_or_mapped(upstream):
    schema = json.loads((upstream_template_dir(upstream) / "parameters-schema.json").read_text())
    rule = _rule_by_folder(COUNTERPARTS[upstream])
    assert mapped({"kind": schema["constraintKind"]})["kind"] == rule.kind


@pytest.mark.parametrize("upstream", IDS)
def test_upstream_suite_verdicts(engine, upstream):
    cases = list(suite_cases(upstream_template_dir(upstream) / "suite.yaml"))
    assert cases, f"no cases in the upstream {upstream} suite"
    failures = [f for case in cases for f in case_failures(engine, case)]
    print(f"{upstream}: {len(cases)} upstream suite cases")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("upstream", IDS)
def test_upstream_samples_by_name(engine, upstream):
    """Samples by naming convention against the constraint.yaml beside them (covers samples no suite names)."""
    checked = 0
    for constraint_path in sorted(upstream_template_dir(upstream).glob("samples/*/constraint.yaml")):
        constraint = mapped(load_yaml(constraint_path))
        for path in sorted(constraint_path.parent.glob("*.yaml")):
            allowed = path.name.startswith("example_allowed")
            disallowed = path.name.startswith(("example_disallowed", "disallowed_"))
            if not (allowed or disallowed):
                continue
            obj, operation = unwrap(load_yaml(path))
            found = messages(engine, constraint, obj, operation)
            assert bool(found) == disallowed, f"{path}: got {found}"
            checked += 1
    assert checked, f"no named samples under {upstream}"


@pytest.mark.parametrize("upstream", IDS)
def test_upstream_parameters_fit_our_schema(upstream):
    upstream_schema = json.loads((upstream_template_dir(upstream) / "parameters-schema.json").read_text())
    rule = _rule_by_folder(COUNTERPARTS[upstream])
    ours = rule.parameter_schema.get("properties") or {}
    for name, prop in ((upstream_schema.get("openAPIV3Schema") or {}).get("properties") or {}).items():
        assert name in ours, f"{rule.folder} lacks upstream parameter {name}"
        assert ours[name].get("type") == prop.get("type"), f"{rule.folder}.{name}: type differs from upstream"
    validator = jsonschema.Draft7Validator(to_json_schema(rule.parameter_schema))
    for constraint_path in sorted(upstream_template_dir(upstream).glob("samples/*/constraint.yaml")):
        parameters = (load_yaml(constraint_path).get("spec") or {}).get("parameters") or {}
        errors = [e.message for e in validator.iter_errors(parameters)]
        assert not errors, f"{constraint_path}: {errors}"


def test_every_general_rule_with_a_counterpart_is_covered():
    ours = {rule.folder for rule in load_rules().values() if rule.folder.startswith("general-")}
    # Rules with no gatekeeper-library counterpart of the same meaning: none today; add here with a reason.
    assert ours == set(COUNTERPARTS.values())
