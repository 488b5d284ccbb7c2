"""The admission checkers of `secstack preview` and `secstack policy check --stack`: the stack's own constraints on
rendered objects (deny -> mandatory, warn -> advisory, dryrun -> nothing) and expired exemptions."""
from __future__ import annotations

import copy
import datetime as dt

import pytest
import yaml

from secstack import preview as preview_mod
from secstack.admission_constraints import constraints_for
from secstack.capture import Registration
from secstack.checks import admission as admission_checks
from secstack.cli import main
from secstack.gatekeeper import Engine
from secstack.preview import Preview, load_stack
from secstack.verdicts import ADVISORY, MANDATORY
from tests.conftest import STACKS, rendered
from tests.helpers.shared import REPO
from tests.helpers.workloads import BAD_DEPLOYMENT



def _preview_with(settings, *objects: dict) -> Preview:
    resources = [
        Registration(urn=f"urn:pulumi:t::secstack::kubernetes:apps/v1:Deployment::{i}", type="kubernetes:apps/v1:Deployment",
                     name=str(i), custom=True, parent="", dependencies=[], inputs=copy.deepcopy(obj), options={})
        for i, obj in enumerate(objects)
    ]
    return Preview(stack="t", settings=settings, resources=resources)


def _policies(verdicts, level=None) -> set[str]:
    return {v.policy for v in verdicts if level is None or v.level == level}


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_manifests_have_no_violations_of_their_own_constraints(stack):
    preview = rendered(stack)
    constraints = constraints_for(preview.settings)
    engine = Engine()
    objects = preview.kubernetes_objects()
    violations = [v for _, obj in objects for v in engine.evaluate(obj, constraints)]
    assert violations == [], [f"{v.constraint}: {v.namespace}/{v.name}: {v.message}" for v in violations][:5]
    assert not [v for v in preview.verdicts if v.policy.startswith(("gatekeeper/", "admission/"))]
    print(f"{stack}: {len(objects)} objects x {len(constraints)} constraints: 0 violations")


def test_deny_is_mandatory_in_prod():
    settings, _ = load_stack("prod")
    verdicts = admission_checks.gatekeeper_constraints(_preview_with(settings, BAD_DEPLOYMENT))
    mandatory = _policies(verdicts, MANDATORY)
    assert {"gatekeeper/K8sPSPPrivilegedContainer", "gatekeeper/K8sDisallowedTags", "gatekeeper/K8sImageDigests"} <= mandatory
    privileged = next(v for v in verdicts if v.policy == "gatekeeper/K8sPSPPrivilegedContainer")
    assert "Deployment orders/bad" in privileged.message and privileged.severity == "high"
    assert privileged.file == "manifests/orders.deployment.bad.yaml"


def test_warn_is_advisory_and_dryrun_reports_nothing(tmp_path):
    settings, _ = load_stack("dev")
    verdicts = admission_checks.gatekeeper_constraints(_preview_with(settings, BAD_DEPLOYMENT))
    assert verdicts and {v.level for v in verdicts} == {ADVISORY}
    assert "gatekeeper/K8sPSPPrivilegedContainer" in _policies(verdicts)
    document = yaml.safe_load((REPO / "stacks" / "Pulumi.dev.yaml").read_text())
    document["config"]["secstack:admission"]["rules"] = {"K8sPSPPrivilegedContainer": {"enforcementAction": "dryrun"}}
    (tmp_path / "Pulumi.t.yaml").write_text(yaml.safe_dump(document))
    dryrun, _ = load_stack("t", tmp_path)
    verdicts = admission_checks.gatekeeper_constraints(_preview_with(dryrun, BAD_DEPLOYMENT))
    assert "gatekeeper/K8sPSPPrivilegedContainer" not in _policies(verdicts)
    assert "gatekeeper/K8sDisallowedTags" in _policies(verdicts)


def test_namespace_exemption_waives_only_its_rule():
    settings, _ = load_stack("prod")
    in_falco = copy.deepcopy(BAD_DEPLOYMENT)
    in_falco["metadata"]["namespace"] = "falco"
    policies = _policies(admission_checks.gatekeeper_constraints(_preview_with(settings, in_falco)), MANDATORY)
    assert "gatekeeper/K8sPSPPrivilegedContainer" not in policies  # Falco's written exemption
    assert "gatekeeper/K8sDisallowedTags" in policies  # :latest is still denied there


def _expired_stack(tmp_path) -> str:
    document = yaml.safe_load((REPO / "stacks" / "Pulumi.prod.yaml").read_text())
    document["config"]["secstack:admission"]["exemptions"].append(
        {"rule": "K8sRequiredLabels", "namespaces": ["payments"], "reason": "migration of the legacy batch jobs, OPS-7", "expires": "2026-11-30"}
    )
    (tmp_path / "Pulumi.t.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return "t"


def test_expired_exemption_fails_the_preview_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(admission_checks, "today", lambda: dt.date(2026, 12, 4))
    name = _expired_stack(tmp_path)
    code = main(["preview", name, "--stacks-dir", str(tmp_path), "--out", str(tmp_path / "out"), "--quiet"])
    output = capsys.readouterr().out
    assert code == 1
    assert "admission/expired-exemption" in output
    result = preview_mod.run(name, tmp_path)
    (expired,) = [v for v in result.verdicts if v.policy == "admission/expired-exemption"]
    index = len(result.settings.admission.exemptions) - 1
    assert expired.level == MANDATORY
    assert f"secstack:admission.exemptions[{index}] (K8sRequiredLabels for payments) expired on 2026-11-30" in expired.message


def test_exemption_valid_through_its_expiry_day_then_warned_then_failed(monkeypatch):
    preview = rendered("prod")
    for today, expected in [(dt.date(2027, 6, 1), set()), (dt.date(2027, 6, 30), {ADVISORY}), (dt.date(2027, 7, 1), {MANDATORY})]:
        monkeypatch.setattr(admission_checks, "today", lambda today=today: today)
        levels = {v.level for v in admission_checks.exemption_expiry(preview)}
        assert levels == expected, today


def test_policy_check_stack_prod(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(BAD_DEPLOYMENT))
    assert main(["policy", "check", "--stack", "prod", str(bad)]) == 1
    output = capsys.readouterr().out
    assert "pss-privileged-container" in output and "DENY" in output
    target = preview_mod.write(rendered("prod"), tmp_path / "out")
    assert main(["policy", "check", "--stack", "prod", str(target / "manifests")]) == 0
    assert " 0 denied" in capsys.readouterr().out


def test_policy_check_unknown_stack_is_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(BAD_DEPLOYMENT))
    assert main(["policy", "check", "--stack", "nosuchstack", str(bad)]) == 2
    assert "Traceback" not in capsys.readouterr().err
