"""Gatekeeper per stack under the mock monitor: pinned release and values, Config exclusions, one template per rule
folder, constraints with the environment's enforcement, parameters and exemptions, and the install ordering."""
from __future__ import annotations

import json

import jsonschema
import pytest

from components.admission import EVENT_KEYS, NAMESPACE, WAIT_FOR_CRD
from components.charts import GATEKEEPER
from secstack.admission_constraints import EXEMPTIONS_ANNOTATION, POD_KINDS, constraints_for
from secstack.gatekeeper import RULES_DIR, load_rules
from stacks.settings.admission import SYSTEM_NAMESPACES, _strict
from tests.conftest import STACKS, rendered
from tests.helpers.charts import unknown_keys
from tests.helpers.crds import crd_errors

EXPECTED = {"dev": ("warn", 1, 300, "Ignore"), "staging": ("warn", 2, 120, "Ignore"), "prod": ("deny", 3, 60, "Fail")}
ISTIO_PROXY = "docker.io/istio/proxyv2:*"


def _release(preview) -> dict:
    (release,) = [r for r in preview.helm_releases() if r["chart"] == "gatekeeper"]
    return release


def _constraints(preview) -> list[dict]:
    return [obj for _, obj in preview.kubernetes_objects() if obj["apiVersion"] == "constraints.gatekeeper.sh/v1beta1"]


def _constraint(preview, kind: str) -> dict:
    (found,) = [c for c in _constraints(preview) if c["kind"] == kind and not c["metadata"]["name"].endswith("-advisory")]
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_release_is_pinned_with_audit_metrics_and_events(stack):
    preview = rendered(stack)
    release = _release(preview)
    _, replicas, interval, failure_policy = EXPECTED[stack]
    assert (release["version"], release["repo"], release["namespace"]) == (GATEKEEPER.version, GATEKEEPER.repo, NAMESPACE)
    values = release["values"]
    assert values["replicas"] == replicas
    assert values["disableAudit"] is False and values["auditInterval"] == interval
    assert values["logDenies"] is True and values["emitAdmissionEvents"] is True and values["emitAuditEvents"] is True
    assert values["metricsBackends"] == ["prometheus"]
    assert values["validatingWebhookFailurePolicy"] == failure_policy
    assert values["pdb"]["controllerManager"]["minAvailable"] == (2 if replicas == 3 else 1)
    assert values["controllerManager"]["resources"]["requests"] and values["audit"]["resources"]["limits"]["memory"]
    assert set(values["validatingWebhookExemptNamespacesLabels"]["kubernetes.io/metadata.name"]) == set(SYSTEM_NAMESPACES) - {NAMESPACE}
    assert unknown_keys("gatekeeper", values, free_form=EVENT_KEYS) == []


@pytest.mark.parametrize("stack", STACKS)
def test_config_excludes_the_system_namespaces_from_every_process(stack):
    (config,) = rendered(stack).find("Config", "config", NAMESPACE)
    assert config["apiVersion"] == "config.gatekeeper.sh/v1alpha1"
    (match,) = config["spec"]["match"]
    assert match["processes"] == ["*"]
    assert {"kube-system", "gatekeeper-system", "istio-system"} <= set(match["excludedNamespaces"])
    assert crd_errors(config) == []


@pytest.mark.parametrize("stack", STACKS)
def test_one_template_per_rule_folder_valid_and_waited_for(stack):
    templates = rendered(stack).find("ConstraintTemplate")
    folders = [p for p in RULES_DIR.iterdir() if (p / "template.yaml").exists()]
    assert len(templates) == len(folders) == len(load_rules())
    assert {t["spec"]["crd"]["spec"]["names"]["kind"] for t in templates} == set(load_rules())
    for template in templates:
        assert template["metadata"]["annotations"]["pulumi.com/waitFor"] == WAIT_FOR_CRD
        assert crd_errors(template) == []


@pytest.mark.parametrize("stack", STACKS)
def test_constraints_have_the_environment_enforcement_and_valid_parameters(stack):
    preview = rendered(stack)
    action = EXPECTED[stack][0]
    rules = load_rules()
    constraints = _constraints(preview)
    assert len(constraints) == len(constraints_for(preview.settings)) >= 20
    for constraint in constraints:
        assert constraint["spec"]["enforcementAction"] == action, constraint["metadata"]["name"]
        schema = _strict(rules[constraint["kind"]].parameter_schema)
        jsonschema.Draft7Validator(schema).validate(constraint["spec"].get("parameters") or {})
        assert set(SYSTEM_NAMESPACES) <= set(constraint["spec"]["match"]["excludedNamespaces"])
    kinds = {c["kind"] for c in constraints}
    assert ("K8sImageDigests" in kinds) == (stack == "prod"), "digests are required in prod only"
    # Restricted-only rules: deny in prod, reported at warn in dev/staging.
    assert {"K8sPSPAllowedUsers", "K8sPSPVolumeTypes", "K8sPSPAllowPrivilegeEscalationContainer"} <= kinds
    assert _constraint(preview, "K8sPSPCapabilities")["spec"]["parameters"]["requiredDropCapabilities"] == ["ALL"]


def test_pod_rules_match_pods_and_every_workload_kind(prod_preview):
    privileged = _constraint(prod_preview, "K8sPSPPrivilegedContainer")
    assert privileged["spec"]["match"]["kinds"] == POD_KINDS
    assert _constraint(prod_preview, "K8sBlockNodePort")["spec"]["match"]["kinds"] == [{"apiGroups": [""], "kinds": ["Service"]}]


@pytest.mark.parametrize("stack", STACKS)
def test_exemptions_reach_the_constraints_with_their_reasons(stack):
    preview = rendered(stack)
    repos = _constraint(preview, "K8sAllowedRepos")
    assert ISTIO_PROXY in repos["spec"]["parameters"]["exemptImages"]
    recorded = json.loads(repos["metadata"]["annotations"][EXEMPTIONS_ANNOTATION])
    istio = [e for e in recorded if e.get("images") == [ISTIO_PROXY]]
    assert istio and "Istio" in istio[0]["reason"] and istio[0]["expires"] == "2027-06-30"
    privileged = _constraint(preview, "K8sPSPPrivilegedContainer")
    assert "falco" in privileged["spec"]["match"]["excludedNamespaces"]
    assert all(e["reason"] for e in json.loads(privileged["metadata"]["annotations"][EXEMPTIONS_ANNOTATION]))
    # An exemption is scoped to its rule: Falco is still checked by the procMount rule, and team namespaces by all.
    proc_mount = _constraint(preview, "K8sPSPProcMount")
    assert "falco" not in proc_mount["spec"]["match"]["excludedNamespaces"]
    team_namespaces = {ns for team in preview.settings.teams for ns in team.namespaces}
    for constraint in _constraints(preview):
        assert not team_namespaces & set(constraint["spec"]["match"]["excludedNamespaces"])


def _by_urn(preview):
    return {r.urn: r for r in preview.resources}


def test_ordering_release_templates_constraints(prod_preview):
    resources = prod_preview.resources
    (release,) = [r for r in resources if r.type == "kubernetes:helm.sh/v3:Release" and r.name == "gatekeeper"]
    (namespace,) = [r for r in resources if r.type == "kubernetes:core/v1:Namespace" and r.name == NAMESPACE]
    (config,) = [r for r in resources if r.type.endswith(":Config") and r.name == "gatekeeper-config"]
    assert namespace.urn in release.dependencies and release.urn in config.dependencies
    templates = {r.inputs["spec"]["crd"]["spec"]["names"]["kind"]: r for r in resources if r.type.endswith(":ConstraintTemplate")}
    assert templates and all(release.urn in t.dependencies for t in templates.values())
    constraints = [r for r in resources if r.type.startswith("kubernetes:constraints.gatekeeper.sh/")]
    assert constraints
    for constraint in constraints:
        kind = constraint.type.rsplit(":", 1)[1]
        assert templates[kind].urn in constraint.dependencies, f"{constraint.name} must wait for its template"
        assert config.urn in constraint.dependencies


def test_gatekeeper_depends_on_every_other_addon(prod_preview):
    resources = prod_preview.resources
    by_urn = _by_urn(prod_preview)
    (platform,) = prod_preview.of_type("secstack:platform:SecurityPlatform")
    (gatekeeper,) = prod_preview.of_type("secstack:admission:Gatekeeper")
    others = {r.urn for r in resources if r.parent == platform.urn and not r.custom and r.urn != gatekeeper.urn}
    assert len(others) >= 2

    def under_other_addon(r) -> bool:
        parent = r.parent
        while parent in by_urn:
            if parent in others:
                return True
            parent = by_urn[parent].parent
        return False

    expected = {r.urn for r in resources if r.custom and under_other_addon(r)}
    missing = expected - set(gatekeeper.dependencies)
    assert expected and not missing, f"Gatekeeper installs before: {sorted(missing)[:5]}"
    # ... and is the last component the platform declares.
    children = [r for r in resources if r.parent == platform.urn and not r.custom]
    assert children[-1].urn == gatekeeper.urn
