"""secstack.gatekeeper: rule loading, bundles, Gatekeeper match semantics, constraint manifests, errors."""
from __future__ import annotations

import shutil

import pytest
import yaml

from secstack import gatekeeper
from secstack.gatekeeper import Constraint, Engine, EvaluationError, GatekeeperError, matches

PRIVILEGED = yaml.safe_load((gatekeeper.RULES_DIR / "pss-privileged-container" / "samples" /
                             "example_disallowed_privileged.yaml").read_text())
PRIV = Constraint(kind="K8sPSPPrivilegedContainer", name="priv")


def test_rules_keyed_by_kind_with_folder_bundles_and_schema():
    rules = gatekeeper.load_rules()
    rule = rules["K8sPSPCapabilities"]
    assert rule.folder == "pss-capabilities"
    assert rule.bundles == ("pss-baseline", "pss-restricted")
    assert set(rule.parameter_schema["properties"]) == {"exemptImages", "allowedCapabilities", "requiredDropCapabilities"}
    assert rules["K8sPSPVolumeTypes"].bundles == ("pss-restricted",)


def test_restricted_includes_baseline_and_overrides_its_parameters():
    baseline = {c.kind: c for c in gatekeeper.bundle_constraints("pss-baseline")}
    restricted = {c.kind: c for c in gatekeeper.bundle_constraints("pss-restricted")}
    assert set(baseline) < set(restricted)
    assert all(c.enforcement_action == "deny" for c in restricted.values())
    assert "SYS_CHROOT" in baseline["K8sPSPCapabilities"].parameters["allowedCapabilities"]
    assert restricted["K8sPSPCapabilities"].parameters == {"allowedCapabilities": ["NET_BIND_SERVICE"],
                                                         "requiredDropCapabilities": ["ALL"]}
    assert restricted["K8sPSPProcMount"].parameters == {"procMount": "Default"}


def test_match_kinds_namespaces_labels_scope_and_name():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "team-a", "labels": {"tier": "web"}}}
    assert matches(pod, {})
    assert matches(pod, {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]})
    assert not matches(pod, {"kinds": [{"apiGroups": ["apps"], "kinds": ["Pod"]}]})
    assert matches(pod, {"kinds": [{"apiGroups": ["*"], "kinds": ["*"]}]})
    assert matches(pod, {"namespaces": ["team-*"]}) and not matches(pod, {"namespaces": ["prod"]})
    assert not matches(pod, {"excludedNamespaces": ["*-a"]})
    assert matches(pod, {"labelSelector": {"matchLabels": {"tier": "web"}}})
    assert not matches(pod, {"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}})
    assert matches(pod, {"labelSelector": {"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}})
    assert not matches(pod, {"scope": "Cluster"}) and matches(pod, {"scope": "Namespaced"})
    assert matches(pod, {"name": "web-*"}) and not matches(pod, {"name": "db"})
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}
    assert not matches(namespace, {"excludedNamespaces": ["kube-system"]})
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}
    assert matches(role, {"namespaces": ["team-a"]})  # cluster-scoped objects are not narrowed by namespaces
    unnamespaced_pod = {"kind": "Pod", "metadata": {"name": "p"}}
    assert not matches(unnamespaced_pod, {"excludedNamespaces": ["default"]})


def test_excluded_namespace_skips_evaluation():
    excluded = Constraint(kind=PRIV.kind, name="priv", match={"excludedNamespaces": ["apps"]})
    assert Engine().evaluate(PRIVILEGED, [excluded]) == []
    found = Engine().evaluate(PRIVILEGED, [PRIV])
    assert [(v.constraint, v.object_kind, v.namespace, v.name, v.enforcement_action) for v in found] == [
        ("priv", "Pod", "apps", "privileged-container-privileged", "deny")]


def test_exempt_images_prefix_and_exact():
    for pattern, exempt in (("registry.example.com/team/*", True), ("registry.example.com/team/app:1.4.2", True),
                            ("registry.example.com/team/app", False), ("registry.example.com/other/*", False)):
        c = Constraint(kind=PRIV.kind, name="priv", parameters={"exemptImages": [pattern]})
        assert (Engine().evaluate(PRIVILEGED, [c]) == []) is exempt, pattern


def test_update_of_a_pod_is_skipped_but_not_of_a_workload():
    deployment = yaml.safe_load((gatekeeper.RULES_DIR / "pss-privileged-container" / "samples" /
                                 "example_disallowed_deployment.yaml").read_text())
    assert Engine().evaluate(PRIVILEGED, [PRIV], operation="UPDATE") == []
    assert len(Engine().evaluate(deployment, [PRIV], operation="UPDATE")) == 1


def test_constraint_manifest_round_trip_and_bad_action():
    c = Constraint(kind="K8sPSPCapabilities", name="caps", enforcement_action="warn",
                   parameters={"allowedCapabilities": []}, match={"excludedNamespaces": ["kube-system"]})
    manifest = c.to_manifest()
    assert manifest["apiVersion"] == "constraints.gatekeeper.sh/v1beta1"
    assert manifest["spec"] == {"enforcementAction": "warn", "match": {"excludedNamespaces": ["kube-system"]},
                                "parameters": {"allowedCapabilities": []}}
    assert Constraint.from_manifest(manifest) == c
    with pytest.raises(GatekeeperError, match="enforcementAction"):
        Constraint.from_manifest({**manifest, "spec": {"enforcementAction": "block"}})


def test_unknown_constraint_kind_is_a_clear_error():
    with pytest.raises(GatekeeperError, match="no ConstraintTemplate defines kind K8sNope"):
        Engine().evaluate(PRIVILEGED, [Constraint(kind="K8sNope", name="x")])


def _rules_copy(tmp_path, rego_body: str):
    rules = tmp_path / "rules"
    shutil.copytree(gatekeeper.RULES_DIR / "lib", rules / "lib")
    (rules / "pss-broken").mkdir(parents=True)
    template = yaml.safe_load((gatekeeper.RULES_DIR / "pss-host-process" / "template.yaml").read_text())
    template["spec"]["crd"]["spec"]["names"]["kind"] = "K8sBroken"
    template["metadata"]["name"] = "k8sbroken"
    template["spec"]["targets"][0]["rego"] = "package k8sbroken\n\nimport rego.v1\n\n" + rego_body
    (rules / "pss-broken" / "template.yaml").write_text(yaml.safe_dump(template))
    return rules


def test_rego_runtime_error_names_rule_and_object(tmp_path):
    rules = _rules_copy(tmp_path, 'violation contains {"msg": msg} if {\n\tmsg := sprintf("%v", [1 / 0])\n}\n')
    engine = Engine(directory=rules)
    with pytest.raises(EvaluationError, match=r"rule pss-broken \(K8sBroken\) failed on Pod apps/privileged-container-privileged"):
        engine.evaluate(PRIVILEGED, [Constraint(kind="K8sBroken", name="b")])


def test_rego_that_does_not_compile_names_the_template(tmp_path):
    rules = _rules_copy(tmp_path, "violation contains {{{ if\n")
    with pytest.raises(GatekeeperError, match="pss-broken/template.yaml: Rego does not compile"):
        Engine(directory=rules).evaluate(PRIVILEGED, [Constraint(kind="K8sBroken", name="b")])


def test_non_objects_are_ignored():
    assert Engine().evaluate(["not", "an", "object"], [PRIV]) == []
    assert Engine().evaluate({"kind": "Pod", "spec": "nonsense"}, [PRIV]) == []
