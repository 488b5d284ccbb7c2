"""One Rego source, two enforcement points: the CrossGuard pack (reading the stack's Constraint resources) and the
preview's admission checker (reading the stack's settings) find exactly the same violations."""
from __future__ import annotations

import copy

from policies.crossguard.testing import policy
from pulumi_policy import StackValidationArgs

from secstack import crossguard
from secstack.capture import Registration
from secstack.checks.admission import gatekeeper_constraints
from secstack.preview import Preview
from tests.conftest import rendered
from tests.helpers.workloads import BAD_DEPLOYMENT as BAD



def with_bad_workload(stack: str) -> Preview:
    base = rendered(stack)
    bad = Registration(urn="urn:pulumi:x::secstack::kubernetes:apps/v1:Deployment::bad", type="kubernetes:apps/v1:Deployment",
                       name="bad", custom=True, parent="", dependencies=[], inputs=copy.deepcopy(BAD),
                       options={"protect": False, "retainOnDelete": False, "deleteBeforeReplace": False, "ignoreChanges": [], "provider": None, "additionalSecretOutputs": []})
    return Preview(stack=base.stack, settings=base.settings, resources=[*base.resources, bad])


def _pack_findings(preview: Preview, name: str) -> set[str]:
    found: list[str] = []
    resources = [r for r in crossguard._policy_resources(preview)]
    policy(name).validate(StackValidationArgs(resources, {}), lambda message, urn=None: found.append(message.split(":")[0].split("/")[0]))
    return set(found)


def test_pack_and_admission_checker_agree_in_prod():
    preview = with_bad_workload("prod")
    checker_kinds = {v.policy.split("/")[1] for v in gatekeeper_constraints(preview) if v.level == "mandatory"}
    assert {"K8sPSPPrivilegedContainer", "K8sDisallowedTags", "K8sAllowedRepos"} <= checker_kinds
    assert _pack_findings(preview, "gatekeeper-deny") == checker_kinds
    assert _pack_findings(preview, "gatekeeper-warn") == set()


def test_pack_and_admission_checker_agree_in_dev():
    preview = with_bad_workload("dev")
    checker_kinds = {v.policy.split("/")[1] for v in gatekeeper_constraints(preview) if v.level == "advisory"}
    assert "K8sPSPPrivilegedContainer" in checker_kinds
    assert _pack_findings(preview, "gatekeeper-warn") == checker_kinds
