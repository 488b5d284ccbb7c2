"""Team, as each committed stack renders it."""
from __future__ import annotations

import pytest

from tests.conftest import STACKS, rendered


@pytest.mark.parametrize("stack,level", [("dev", "baseline"), ("staging", "baseline"), ("prod", "restricted")])
def test_namespaces_enforce_pod_security_and_injection(stack, level):
    preview = rendered(stack)
    for team in preview.settings.teams:
        for ns in team.namespaces:
            [namespace] = preview.find("Namespace", ns)
            labels = namespace["metadata"]["labels"]
            assert labels["pod-security.kubernetes.io/enforce"] == level
            assert labels["istio-injection"] == "enabled"
            assert labels["team"] == team.name
            assert namespace["metadata"]["annotations"]["secstack.io/owner"] == team.owner


@pytest.mark.parametrize("stack", STACKS)
def test_rbac_has_no_wildcards_and_no_secret_access(stack):
    preview = rendered(stack)
    team_namespaces = {ns for t in preview.settings.teams for ns in t.namespaces}
    roles = [r for r in preview.find("Role") if r["metadata"]["namespace"] in team_namespaces]
    assert len(roles) == 2 * len(team_namespaces)
    for role in roles:
        for rule in role["rules"]:
            for field in ("verbs", "resources", "apiGroups"):
                assert "*" not in rule[field], f"{role['metadata']['name']}: wildcard in {field}"
            assert "secrets" not in rule["resources"]
            if role["metadata"]["name"].endswith("-viewer"):
                assert set(rule["verbs"]) <= {"get", "list", "watch"}


@pytest.mark.parametrize("stack", STACKS)
def test_role_bindings_bind_the_team_groups(stack):
    preview = rendered(stack)
    [binding] = preview.find("RoleBinding", "orders-deployer", "orders")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "orders-deployer"}
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "orders-ci"}]


@pytest.mark.parametrize("stack", STACKS)
def test_service_accounts_do_not_automount_tokens(stack):
    preview = rendered(stack)
    accounts = preview.find("ServiceAccount")
    assert {(a["metadata"]["namespace"], a["metadata"]["name"]) for a in accounts} >= {
        ("storefront", "storefront-web"), ("orders", "orders-api"), ("payments", "payments-api")}
    assert all(a["automountServiceAccountToken"] is False for a in accounts)


@pytest.mark.parametrize("stack", STACKS)
def test_default_deny_network_policy_with_explicit_dns_and_istio(stack):
    preview = rendered(stack)
    for team in preview.settings.teams:
        for ns in team.namespaces:
            [deny] = preview.find("NetworkPolicy", "default-deny", ns)
            assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
            [allow] = preview.find("NetworkPolicy", "allow-mesh", ns)
            dns = allow["spec"]["egress"][0]
            assert dns["to"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}
            assert {p["port"] for p in dns["ports"]} == {53}
            sources = [f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for f in allow["spec"]["ingress"][0]["from"]]
            assert "istio-system" in sources


def test_network_policy_follows_allowed_callers():
    preview = rendered("prod")
    [payments] = preview.find("NetworkPolicy", "allow-mesh", "payments")
    sources = {f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for f in payments["spec"]["ingress"][0]["from"]}
    assert "orders" in sources and "storefront" not in sources
    [orders] = preview.find("NetworkPolicy", "allow-mesh", "orders")
    peers = {f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for f in orders["spec"]["egress"][-1]["to"]}
    assert "payments" in peers


@pytest.mark.parametrize("stack", STACKS)
def test_quota_forbids_direct_exposure(stack):
    preview = rendered(stack)
    for quota in preview.find("ResourceQuota"):
        hard = quota["spec"]["hard"]
        assert hard["services.loadbalancers"] == "0" and hard["services.nodeports"] == "0"
        assert {"requests.cpu", "limits.memory", "pods"} <= set(hard)
