"""The general-* Gatekeeper rules: folder layout, CRD validity, both Rego dialects, their own suites, the
`general` bundle's defaults, and behaviour on odd objects and UPDATEs."""
from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from secstack.gatekeeper import RULES_DIR, Constraint, Engine, bundle_constraints, compile_rule, load_rules, review_for
from secstack.gatekeeper_sync import stale_templates
from tests.helpers.crds import crd_errors, to_json_schema
from tests.policies.conformance_helpers import case_failures, load_yaml, suite_cases

GENERAL = sorted(rule.folder for rule in load_rules().values() if rule.folder.startswith("general-"))
SERVICE_OR_INGRESS = {"general-block-nodeport", "general-block-loadbalancer", "general-https-only"}
WORKLOAD = [f for f in GENERAL if f not in SERVICE_OR_INGRESS]
CONTAINER_RULES = [f for f in WORKLOAD if f not in {"general-required-labels", "general-block-automount-token"}]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine()


def rule_of(folder):
    return next(rule for rule in load_rules().values() if rule.folder == folder)


def samples(folder, prefix):
    return sorted((RULES_DIR / folder / "samples").glob(f"{prefix}*.yaml"))


def test_all_twelve_general_rules_exist():
    assert {rule_of(f).kind for f in GENERAL} == {
        "K8sAllowedRepos", "K8sDisallowedTags", "K8sImageDigests", "K8sRequiredLabels", "K8sContainerLimits",
        "K8sContainerRequests", "K8sRequiredProbes", "K8sBlockNodePort", "K8sBlockLoadBalancer", "K8sHttpsOnly",
        "K8sBlockAutomountToken", "K8sPSPReadOnlyRootFilesystem",
    }


@pytest.mark.parametrize("folder", GENERAL)
def test_folder_layout(folder):
    base = RULES_DIR / folder
    assert (base / "template.yaml").is_file() and (base / "suite.yaml").is_file()
    assert (base / "samples" / "constraint.yaml").is_file()
    assert samples(folder, "example_allowed") and samples(folder, "example_disallowed")
    suite = load_yaml(base / "suite.yaml")
    assert suite["apiVersion"] == "test.gatekeeper.sh/v1alpha1" and suite["kind"] == "Suite"
    named = {case["object"] for test in suite["tests"] for case in test["cases"]}
    on_disk = {f"samples/{p.name}" for p in samples(folder, "example_")}
    assert on_disk <= named, f"samples no suite case uses: {sorted(on_disk - named)}"


@pytest.mark.parametrize("folder", GENERAL)
def test_template_is_a_valid_constraint_template(folder):
    template = rule_of(folder).template
    assert crd_errors(template) == []
    assert template["metadata"]["name"] == template["spec"]["crd"]["spec"]["names"]["kind"].lower()
    assert "exemptImages" in rule_of(folder).parameter_schema["properties"]
    rego = template["spec"]["targets"][0]["rego"]
    assert "import rego.v1" in rego and f"package {template['metadata']['name']}\n" in rego


def test_embedded_libs_are_current():
    stale = [p for p in stale_templates() if p.parent.name.startswith("general-")]
    assert stale == [], "run `python -m secstack.gatekeeper_sync`"


@pytest.mark.parametrize("folder", WORKLOAD)
def test_workload_rules_have_deployment_cronjob_samples(folder):
    kinds = {load_yaml(p)["kind"] for p in samples(folder, "example_disallowed")}
    assert {"Pod", "Deployment", "CronJob"} <= kinds or folder == "general-required-probes" and {"Pod", "Deployment"} <= kinds


@pytest.mark.parametrize("folder", CONTAINER_RULES)
def test_container_rules_have_init_and_ephemeral_cases(folder):
    texts = [p.read_text() for p in samples(folder, "example_disallowed")]
    assert any("initContainers" in t for t in texts)
    if folder not in {"general-container-limits", "general-container-requests", "general-required-probes"}:
        assert any("ephemeralContainers" in t for t in texts)  # the API rejects resources/probes on ephemeral containers


@pytest.mark.parametrize("folder", GENERAL)
def test_own_suite_passes(engine, folder):
    cases = list(suite_cases(RULES_DIR / folder / "suite.yaml"))
    failures = [f for case in cases for f in case_failures(engine, case)]
    assert not failures, "\n".join(failures)
    disallowed = [c for c in cases if any(a.get("message") for a in c.assertions)]
    assert disallowed, "suite asserts no message substrings"


@pytest.mark.parametrize("folder", GENERAL)
def test_rego_v0_and_v1_agree(folder):
    rule = rule_of(folder)
    engines = [compile_rule(rule, rego_v0=True), compile_rule(rule, rego_v0=False)]
    query = f"data.{rule.template['metadata']['name']}.violation"
    for case in suite_cases(RULES_DIR / folder / "suite.yaml"):
        payload = json.dumps({"review": review_for(case.obj), "parameters": (case.constraint.get("spec") or {}).get("parameters") or {}})
        results = []
        for regorus_engine in engines:
            regorus_engine.set_input_json(payload)
            results.append(sorted(json.dumps(v, sort_keys=True) for v in json.loads(regorus_engine.eval_rule_as_json(query)) or []))
        assert results[0] == results[1], case.where


@pytest.mark.parametrize(("folder", "sample", "expected"), [
    ("general-allowed-repos", "example_disallowed_deployment.yaml",
     'container <app> has an invalid image repo <quay.io/acme/app:1.0> at spec.template.spec.containers[0].image, '
     'allowed repos are ["registry.cn-hangzhou.aliyuncs.com/secstack/", "*.cr.aliyuncs.com/"]'),
    ("general-disallowed-tags", "example_disallowed_cronjob.yaml",
     "initContainer <fetch> didn't specify an image tag in spec.jobTemplate.spec.template.spec.initContainers[0].image "
     "<registry.cn-hangzhou.aliyuncs.com/secstack/fetch> (an untagged image is pulled as latest)"),
    ("general-container-limits", "example_disallowed_cronjob.yaml",
     "initContainer <fetch> has no memory limit; set spec.jobTemplate.spec.template.spec.initContainers[0].resources.limits.memory"),
    ("general-read-only-root-filesystem", "example_disallowed_initcontainer.yaml",
     "only read-only root filesystem container is allowed: setup; set spec.initContainers[0].securityContext."
     "readOnlyRootFilesystem to true (initContainer)"),
    ("general-required-labels", "example_disallowed_deployment.yaml",
     'workloads must say which team owns them: you must provide labels: ["owner", "team"] (missing at spec.template.metadata.labels)'),
])
def test_messages_name_container_and_field(engine, folder, sample, expected):
    constraint = Constraint.from_manifest(load_yaml(RULES_DIR / folder / "samples" / "constraint.yaml"))
    found = [v.message for v in engine.evaluate(load_yaml(RULES_DIR / folder / "samples" / sample), [constraint])]
    assert found == [expected]


def test_bundle_defaults_fit_the_parameter_schemas():
    constraints = {c.kind: c for c in bundle_constraints("general")}
    assert len(constraints) == len(GENERAL)
    for folder in GENERAL:
        rule = rule_of(folder)
        errors = list(jsonschema.Draft7Validator(to_json_schema(rule.parameter_schema)).iter_errors(constraints[rule.kind].parameters))
        assert not errors, f"{rule.kind}: {[e.message for e in errors]}"


DIGEST = "sha256:" + "ab" * 32
GOOD_CONTAINER = {
    "name": "app", "image": f"registry.cn-shanghai.aliyuncs.com/acme/app:2.0.1@{DIGEST}",
    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "512Mi"}},
    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
    "readinessProbe": {"tcpSocket": {"port": 8080}},
    "securityContext": {"readOnlyRootFilesystem": True},
}
GOOD_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "api", "namespace": "shop", "labels": {"team": "payments", "owner": "alice"}},
    "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": {
        "metadata": {"labels": {"app": "api", "team": "payments", "owner": "alice"}},
        "spec": {"automountServiceAccountToken": False, "containers": [GOOD_CONTAINER]}}},
}


def _flawed(path, value):
    obj = copy.deepcopy(GOOD_DEPLOYMENT)
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return obj


C0 = ("spec", "template", "spec", "containers", 0)


@pytest.mark.parametrize(("flawed", "kind"), [
    (_flawed(C0 + ("image",), f"docker.io/library/app:2.0.1@{DIGEST}"), "K8sAllowedRepos"),
    (_flawed(C0 + ("image",), "registry.cn-shanghai.aliyuncs.com/acme/app:latest@" + DIGEST), "K8sDisallowedTags"),
    (_flawed(C0 + ("image",), "registry.cn-shanghai.aliyuncs.com/acme/app:2.0.1"), "K8sImageDigests"),
    (_flawed(("metadata", "labels"), {"team": "payments"}), "K8sRequiredLabels"),
    (_flawed(C0 + ("resources", "limits"), {"cpu": "1", "memory": "16Gi"}), "K8sContainerLimits"),
    (_flawed(C0 + ("resources", "requests"), {"cpu": "500m"}), "K8sContainerRequests"),
    (_flawed(C0 + ("readinessProbe",), None), "K8sRequiredProbes"),
    (_flawed(C0 + ("securityContext",), {}), "K8sPSPReadOnlyRootFilesystem"),
    (_flawed(("spec", "template", "spec", "automountServiceAccountToken"), True), "K8sBlockAutomountToken"),
])
def test_general_bundle_defaults_catch_each_flaw_alone(engine, flawed, kind):
    constraints = bundle_constraints("general")
    assert engine.evaluate(GOOD_DEPLOYMENT, constraints) == []
    assert {v.kind for v in engine.evaluate(flawed, constraints)} == {kind}


@pytest.mark.parametrize("image", [
    "registry.cn-hangzhou.aliyuncs.com/acme/app:1", "registry-vpc.cn-hangzhou.aliyuncs.com/acme/app:1",
    "acme-registry.cn-hangzhou.cr.aliyuncs.com/ns/app:1", "acme-registry-vpc.cn-beijing.cr.aliyuncs.com/ns/app:1",
])
def test_bundle_admits_acr_hosts(engine, image):
    repos = next(c for c in bundle_constraints("general") if c.kind == "K8sAllowedRepos")
    assert engine.evaluate(_flawed(C0 + ("image",), image), [repos]) == []


@pytest.mark.parametrize("image", [
    "registry.cn-hangzhou.aliyuncs.com.evil.example/acme/app:1", "evil.example/registry.cn-hangzhou.aliyuncs.com/app:1",
    "evil.example/x.cr.aliyuncs.com/app:1", "registry.cn-hangzhou.aliyuncs.comx/app:1", "nginx:1.27", "",
])
def test_bundle_rejects_lookalike_hosts(engine, image):
    repos = next(c for c in bundle_constraints("general") if c.kind == "K8sAllowedRepos")
    assert len(engine.evaluate(_flawed(C0 + ("image",), image), [repos])) == 1


@pytest.mark.parametrize("folder", ["general-read-only-root-filesystem", "general-required-probes", "general-block-automount-token"])
def test_update_skips_pods_but_not_workloads(engine, folder):
    """Pod security fields are immutable (gatekeeper-library skips UPDATE); a Deployment's template is not."""
    constraint = Constraint.from_manifest(load_yaml(RULES_DIR / folder / "samples" / "constraint.yaml"))
    pod = load_yaml(RULES_DIR / folder / "samples" / "example_disallowed.yaml")
    deployment = load_yaml(RULES_DIR / folder / "samples" / "example_disallowed_deployment.yaml")
    assert engine.evaluate(pod, [constraint], operation="UPDATE") == []
    assert engine.evaluate(pod, [constraint]) != []
    assert engine.evaluate(deployment, [constraint], operation="UPDATE") != []


ODD_SPECS = [
    None, [], "spec", {"containers": None}, {"containers": "x"}, {"containers": [None, 3, "c"]},
    {"containers": [{"image": 7, "name": ["n"], "resources": "big", "securityContext": "ro"}]},
    {"containers": [{"resources": {"limits": [], "requests": {"cpu": {}, "memory": None}}}]},
    {"containers": [{"livenessProbe": "yes", "readinessProbe": {"httpGet": None}}], "initContainers": {"a": 1}},
    {"initContainers": [{"image": "a@b@c:d", "restartPolicy": 5}], "ephemeralContainers": [{}], "os": "windows"},
    {"automountServiceAccountToken": "false", "restartPolicy": []},
]
ODD_OBJECTS = (
    [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": s} for s in ODD_SPECS]
    + [{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": 1, "labels": "x"}, "spec": {"jobTemplate": s}} for s in ODD_SPECS]
    + [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": None, "spec": {"template": {"metadata": 3, "spec": s}}} for s in ODD_SPECS]
    + [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"annotations": "a"}, "spec": {"type": "NodePort"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"annotations": {"secstack.io/allow-external": 1}}, "spec": {"type": "LoadBalancer"}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"annotations": []}, "spec": {"tls": "yes"}},
        {"apiVersion": 5, "kind": "Ingress", "spec": None},
        {"apiVersion": "v1", "kind": "ServiceAccount", "automountServiceAccountToken": None},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "labels": {"team": 5, "owner": None}}},
    ]
)
ODD_PARAMETERS = [{}, {"repos": "x", "tags": None, "exemptImages": "*", "labels": [1, {"key": 2}, {"key": "team", "allowedRegex": "(["}],
                      "cpu": [], "memory": "lots", "probes": None, "probeTypes": [3], "allowAnnotation": 4, "tlsOptional": "yes"}]


@pytest.mark.parametrize("parameters", ODD_PARAMETERS)
def test_odd_objects_and_parameters_never_raise(engine, parameters):
    constraints = [Constraint(kind=rule_of(f).kind, name=f, parameters=parameters) for f in GENERAL]
    for obj in ODD_OBJECTS:
        violations = engine.evaluate(obj, constraints)
        assert isinstance(violations, list)
        assert all(isinstance(v.message, str) and v.message for v in violations)
