"""Every object every stack renders is valid: built-in kinds against the Kubernetes schema (strict, pinned
version), custom resources against the upstream CRD, Helm values against the upstream chart's keys."""
from __future__ import annotations

import json

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import STACKS, rendered
from tests.helpers.charts import unknown_keys
from tests.helpers.crds import crd_errors, has_crd
from tests.helpers.shared import REPO, require_shared

KUBERNETES_VERSION = "1.35.0"
BUILT_IN_GROUPS = {"", "apps", "batch", "policy", "rbac.authorization.k8s.io", "networking.k8s.io", "autoscaling", "storage.k8s.io", "admissionregistration.k8s.io", "scheduling.k8s.io", "coordination.k8s.io"}

# Helm values paths that the charts document as pass-through maps but whose defaults are not empty.
FREE_FORM = {"eck-operator": {"podSecurityContext", "securityContext"}, "istiod": {"meshConfig"},
             # read by the chart templates through `hasKey`, so absent from values.yaml (components/admission.py)
             "gatekeeper": {"emitAdmissionEvents", "emitAuditEvents"},
             "kube-prometheus-stack": {
                 "grafana.grafana.ini",  # grafana.ini sections, rendered verbatim
                 "alertmanager.alertmanagerSpec.configSecret",  # commented default in values.yaml, read by the template
             }}


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def _objects(stack: str):
    return [obj for _, obj in rendered(stack).kubernetes_objects()]


@pytest.mark.parametrize("stack", STACKS)
def test_built_in_objects_pass_strict_schema(stack):
    checked = 0
    for obj in _objects(stack):
        if _group(obj["apiVersion"]) not in BUILT_IN_GROUPS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{stack}: {obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}: {exc.message}")
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("stack", STACKS)
def test_custom_resources_match_upstream_crds(stack):
    require_shared("crds")
    errors, checked, unknown = [], 0, []
    for obj in _objects(stack):
        if _group(obj["apiVersion"]) in BUILT_IN_GROUPS:
            continue
        if obj["apiVersion"].startswith("constraints.gatekeeper.sh/"):
            continue  # CRDs generated per ConstraintTemplate; checked against the template's parameter schema
        if not has_crd(obj["apiVersion"], obj["kind"]):
            unknown.append(f"{obj['apiVersion']} {obj['kind']}")
            continue
        errors += crd_errors(obj)
        checked += 1
    assert not unknown, f"custom resources without an upstream CRD in ../shared/crds: {sorted(set(unknown))}"
    assert not errors, "\n".join(errors)
    assert checked >= 5


@pytest.mark.parametrize("stack", STACKS)
def test_helm_values_keys_exist_in_upstream_charts(stack):
    require_shared("charts")
    problems = []
    for release in rendered(stack).helm_releases():
        assert release["version"], f"{release['name']}: chart version must be pinned"
        chart = release["chart"]
        bad = unknown_keys(chart, release["values"], FREE_FORM.get(chart, ()))
        problems += [f"{release['name']} ({chart}): {key}" for key in bad]
    assert not problems, "value keys the chart does not define (Helm would ignore them silently):\n" + "\n".join(problems)


@pytest.mark.parametrize("stack", STACKS)
def test_pinned_chart_versions_match_the_upstream_copies(stack):
    index = require_shared("charts", "INDEX.md").read_text()
    for release in rendered(stack).helm_releases():
        row = next((line for line in index.splitlines() if line.startswith(f"| {release['chart']} ")), None)
        assert row, f"{release['chart']} is not in ../shared/charts/INDEX.md"
        assert f"| {release['version']}" in row, f"{release['chart']} pinned at {release['version']}, upstream copy: {row}"


def test_project_file_validates_against_pulumi_schema():
    schema = json.loads(require_shared("schemas", "pulumi-project.json").read_text())
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    jsonschema.validate(project, schema)
    assert project["name"] == "secstack"
    assert project["runtime"]["name"] == "python" and project["runtime"]["options"]["virtualenv"]
    assert project["stackConfigDir"] == "stacks" and project["main"].rstrip("/") == "stacks"
