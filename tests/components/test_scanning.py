"""TrivyOperator, as each committed stack renders it, and the secstack:scanning settings that drive it."""
from __future__ import annotations

import pytest

from components.scanning import METRICS_LABELS, NAMESPACE, RELEASE
from stacks.settings import SettingsError
from tests.conftest import STACKS, rendered
from tests.helpers.charts import chart_values, unknown_keys
from tests.helpers.detection import load_variant, monitors_selecting, release

EXPECTED_SEVERITY = {"dev": "HIGH,CRITICAL", "staging": "MEDIUM,HIGH,CRITICAL", "prod": "MEDIUM,HIGH,CRITICAL"}
SCANNER_FLAGS = (
    "vulnerabilityScannerEnabled",
    "configAuditScannerEnabled",
    "rbacAssessmentScannerEnabled",
    "exposedSecretScannerEnabled",
    "infraAssessmentScannerEnabled",
)
# Kubernetes securityContext objects passed through verbatim by the chart (toJson into the operator ConfigMap).
PASS_THROUGH = ["trivyOperator.scanJobPodTemplateContainerSecurityContext", "podSecurityContext"]


def _values(stack: str) -> dict:
    return release(rendered(stack), RELEASE)["values"]


@pytest.mark.parametrize("stack", STACKS)
def test_release_is_pinned_in_its_namespace(stack):
    r = release(rendered(stack), RELEASE)
    assert (r["chart"], r["version"], r["namespace"]) == ("trivy-operator", "0.34.0", NAMESPACE)
    assert r["repo"] == "https://aquasecurity.github.io/helm-charts/"
    assert chart_values("trivy-operator")["operator"]["scanJobsConcurrentLimit"] == 10  # the copy we check against


@pytest.mark.parametrize("stack", STACKS)
def test_every_value_key_exists_in_the_chart(stack):
    assert unknown_keys("trivy-operator", _values(stack), free_form=PASS_THROUGH) == []


@pytest.mark.parametrize("stack", STACKS)
def test_all_scanners_and_compliance_are_on(stack):
    operator = _values(stack)["operator"]
    assert {flag: operator[flag] for flag in SCANNER_FLAGS} == {flag: True for flag in SCANNER_FLAGS}
    assert operator["clusterComplianceEnabled"] is True
    compliance = _values(stack)["compliance"]
    assert {"k8s-cis-1.23", "k8s-nsa-1.0", "k8s-pss-restricted-0.1"} <= set(compliance["specs"])
    assert set(compliance["specs"]) <= set(chart_values("trivy-operator")["compliance"]["specs"]), "specs the chart ships"


@pytest.mark.parametrize("stack", STACKS)
def test_severity_threshold_comes_from_the_stack(stack):
    values = _values(stack)
    assert values["trivy"]["severity"] == EXPECTED_SEVERITY[stack]
    assert values["trivy"]["ignoreUnfixed"] is False


@pytest.mark.parametrize("stack", STACKS)
def test_scan_jobs_are_limited_and_hardened(stack):
    values = _values(stack)
    assert values["operator"]["scanJobsConcurrentLimit"] == rendered(stack).settings.scanning.scan_jobs_concurrent_limit
    assert values["operator"]["scanJobsConcurrentLimit"] == {"dev": 3, "staging": 5, "prod": 10}[stack]
    limits = values["trivy"]["resources"]["limits"]
    assert limits["cpu"] and limits["memory"]
    job = values["trivyOperator"]
    assert job["scanJobAutomountServiceAccountToken"] is False
    pod = job["scanJobPodTemplatePodSecurityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    container = job["scanJobPodTemplateContainerSecurityContext"]
    assert container["allowPrivilegeEscalation"] is False and container["privileged"] is False
    assert container["readOnlyRootFilesystem"] is True and container["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize("stack", STACKS)
def test_excluded_namespaces_never_hide_app_teams(stack):
    preview = rendered(stack)
    excluded = _values(stack)["excludeNamespaces"].split(",")
    assert excluded == ["kube-node-lease", "kube-public"]
    team_namespaces = {ns for team in preview.settings.teams for ns in team.namespaces}
    assert team_namespaces and not team_namespaces & set(excluded)


@pytest.mark.parametrize("stack", STACKS)
def test_namespace_is_created_with_pod_security_and_no_sidecars(stack):
    [ns] = rendered(stack).find("Namespace", NAMESPACE)
    labels = ns["metadata"]["labels"]
    # privileged only because the infra-assessment node-collector needs hostPID and hostPath
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["pod-security.kubernetes.io/audit"] == "restricted"
    assert labels["istio-injection"] == "disabled"


@pytest.mark.parametrize("stack", STACKS)
def test_metrics_are_on_and_scraped_exactly_once(stack):
    values = _values(stack)
    assert values["operator"]["metricsFindingsEnabled"] is True
    assert values["serviceMonitor"]["enabled"] is False, "the monitoring area's ServiceMonitor scrapes it"
    [monitor] = monitors_selecting(rendered(stack), NAMESPACE, METRICS_LABELS)
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]


def test_component_registration():
    preview = rendered("prod")
    [component] = preview.of_type("secstack:scanning:TrivyOperator")
    children = [r for r in preview.resources if r.parent == component.urn]
    assert {r.type for r in children} == {"kubernetes:core/v1:Namespace", "kubernetes:helm.sh/v3:Release"}


def _set(section: str, **values):
    def edit(raw):
        raw.setdefault(f"secstack:{section}", {}).update(values)

    return edit


def test_unknown_severity_is_rejected_naming_the_key():
    with pytest.raises(SettingsError) as err:
        load_variant("dev", _set("scanning", severityThreshold="SEVERE"))
    assert any(p.startswith("secstack:scanning.severityThreshold:") for p in err.value.problems)


@pytest.mark.parametrize("scanner", ["vulnerability", "configAudit", "rbacAssessment", "exposedSecret", "infraAssessment"])
def test_prod_cannot_turn_a_scanner_off_without_a_reason(scanner):
    with pytest.raises(SettingsError) as err:
        load_variant("prod", _set("scanning", scanners={scanner: False}))
    [problem] = err.value.problems
    assert problem.startswith(f"secstack:scanning.scanners.{scanner}:") and "secstack:scanning.reason" in problem
    settings = load_variant("prod", _set("scanning", scanners={scanner: False}, reason="SEC-123: node agent crash on ACK 1.35"))
    assert settings.scanning.scanners.model_dump(by_alias=True)[scanner] is False


def test_dev_may_turn_a_scanner_off():
    settings = load_variant("dev", _set("scanning", scanners={"exposedSecret": False}))
    assert settings.scanning.scanners.exposed_secret is False


@pytest.mark.parametrize(
    "override, key",
    [
        ({"enabled": False}, "enabled"),
        ({"severityThreshold": "CRITICAL"}, "severityThreshold"),
        ({"ignoreUnfixed": True}, "ignoreUnfixed"),
        ({"excludedNamespaces": ["kube-node-lease", "kube-public", "payments"]}, "excludedNamespaces"),
        ({"complianceSpecs": ["k8s-cis-1.23"]}, "complianceSpecs"),
    ],
)
def test_prod_weakening_needs_a_reason(override, key):
    with pytest.raises(SettingsError) as err:
        load_variant("prod", _set("scanning", **override))
    assert [p.split(":", 2)[1] for p in err.value.problems] == [f"scanning.{key}"]


def test_wildcard_exclusion_is_rejected():
    with pytest.raises(SettingsError) as err:
        load_variant("dev", _set("scanning", excludedNamespaces=["*"]))
    assert any(p.startswith("secstack:scanning.excludedNamespaces") for p in err.value.problems)


def test_prod_scanning_off_with_a_reason_removes_the_release(tmp_path):
    from secstack import preview as preview_mod

    source = (preview_mod.ROOT / "stacks" / "Pulumi.prod.yaml").read_text()
    (tmp_path / "Pulumi.prod.yaml").write_text(
        source + "  secstack:scanning:\n    enabled: false\n    reason: SEC-9 replaced by the registry scanner\n"
        if "secstack:scanning:" not in source
        else source.replace("  secstack:scanning:\n", "  secstack:scanning:\n    enabled: false\n    reason: SEC-9 replaced by the registry scanner\n", 1)
    )
    preview = preview_mod.run("prod", tmp_path, checks=False)
    assert [r for r in preview.helm_releases() if r["name"] == RELEASE] == []
    assert preview.of_type("secstack:scanning:TrivyOperator") == []
