"""Every CrossGuard policy, violating and compliant, through the policy-author helpers."""
from __future__ import annotations

import json

import pytest

from policies.crossguard.testing import assert_no_violation, assert_violation, k8s, resource, violations

PROD = {"environment": "prod"}
DEV = {"environment": "dev"}
KEY = "alicloud:kms/key:Key"
SECRET = "alicloud:kms/secret:Secret"


def good_key(**overrides):
    return resource(KEY, {"automaticRotation": "Enabled", "rotationInterval": "8760h", "pendingWindowInDays": 30, **overrides}, protect=True)


class TestKmsKeyRotation:
    def test_rotation_off_is_a_violation(self):
        assert_violation("kms-key-rotation", good_key(automaticRotation="Disabled"), "automatic rotation is Disabled")

    def test_short_pending_window_is_a_violation(self):
        assert_violation("kms-key-rotation", good_key(pendingWindowInDays=3), "pending window 3 days is below 7")

    def test_rotation_without_interval_is_a_violation(self):
        assert_violation("kms-key-rotation", good_key(rotationInterval=None), "no rotation_interval")

    def test_compliant_key(self):
        assert_no_violation("kms-key-rotation", good_key())


class TestProtectedInProd:
    def test_unprotected_key_in_prod(self):
        key = resource(KEY, {}, name="data", protect=False)
        assert_violation("kms-protected-in-prod", key, "Key data is not protected in prod", PROD)

    def test_unprotected_secret_in_prod(self):
        assert_violation("kms-protected-in-prod", resource(SECRET, {}, name="stripe"), "Secret stripe is not protected", PROD)

    def test_dev_and_protected_are_fine(self):
        assert_no_violation("kms-protected-in-prod", resource(KEY, {}, protect=False), DEV)
        assert_no_violation("kms-protected-in-prod", resource(KEY, {}, protect=True), PROD)


class TestSecretCustomerKey:
    def test_missing_customer_key(self):
        secret = resource(SECRET, {"secretData": "x"}, name="s", additional_secret_outputs=["secretData"])
        assert_violation("kms-secret-customer-key", secret, "no encryption_key_id")

    def test_value_not_secret(self):
        secret = resource(SECRET, {"encryptionKeyId": "key-1", "secretData": "x"}, name="s")
        assert_violation("kms-secret-customer-key", secret, "secret_data is not marked secret")

    def test_compliant(self):
        assert_no_violation("kms-secret-customer-key", resource(SECRET, {"encryptionKeyId": "key-1"}, additional_secret_outputs=["secretData"]))


def ram_policy(actions, resources):
    document = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resources}]}
    return resource("alicloud:ram/policy:Policy", {"policyDocument": json.dumps(document)}, name="p")


class TestRamNoWildcards:
    @pytest.mark.parametrize("actions,resources,message", [
        (["*"], ["acs:kms:cn-hangzhou:1:secret/a"], "wildcard action '*'"),
        (["kms:*"], ["acs:kms:cn-hangzhou:1:secret/a"], "wildcard action 'kms:*'"),
        (["kms:GetSecretValue"], "*", "wildcard resource '*'"),
        (["kms:Decrypt"], ["acs:kms:cn-hangzhou:1:key/*"], "wildcard resource"),
    ])
    def test_wildcards_are_violations(self, actions, resources, message):
        assert_violation("ram-no-wildcards", ram_policy(actions, resources), message)

    def test_exact_policy_is_fine(self):
        assert_no_violation("ram-no-wildcards", ram_policy(["kms:GetSecretValue"], ["acs:kms:cn-hangzhou:1:secret/payments/stripe"]))

    def test_unparseable_document(self):
        assert_violation("ram-no-wildcards", resource("alicloud:ram/policy:Policy", {"policyDocument": "{nope"}), "not valid JSON")


def trust(conditions):
    statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Federated": ["acs:ram::1:oidc-provider/ack-rrsa-c1"]}}
    if conditions is not None:
        statement["Condition"] = {"StringEquals": conditions}
    return resource("alicloud:ram/role:Role", {"assumeRolePolicyDocument": json.dumps({"Version": "1", "Statement": [statement]})}, name="role")


class TestRrsaTrust:
    def test_missing_conditions(self):
        assert_violation("rrsa-trust-pinned", trust(None), "does not pin oidc:sub")
        assert_violation("rrsa-trust-pinned", trust(None), "does not pin oidc:aud")

    def test_wildcard_subject(self):
        assert_violation("rrsa-trust-pinned", trust({"oidc:aud": "sts.aliyuncs.com", "oidc:sub": "system:serviceaccount:payments:*"}), "oidc:sub")

    def test_pinned_trust_is_fine(self):
        assert_no_violation("rrsa-trust-pinned", trust({"oidc:aud": "sts.aliyuncs.com", "oidc:sub": "system:serviceaccount:payments:payments-api", "oidc:iss": "https://oidc"}))

    def test_service_trust_is_not_rrsa(self):
        role = resource("alicloud:ram/role:Role", {"assumeRolePolicyDocument": json.dumps({"Statement": [{"Principal": {"Service": ["ecs.aliyuncs.com"]}}]})})
        assert_no_violation("rrsa-trust-pinned", role)


def team_namespace(name="orders"):
    return k8s("Namespace", name, metadata={"labels": {"secstack.io/team": name}})


def default_deny(ns="orders"):
    return k8s("NetworkPolicy", "default-deny", ns, "networking.k8s.io/v1", spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})


def deny_all(ns="orders"):
    return k8s("AuthorizationPolicy", "deny-all", ns, "security.istio.io/v1", spec={})


class TestNamespaceIsolation:
    def test_missing_policies(self):
        assert_violation("namespace-isolation", [team_namespace()], "no default-deny NetworkPolicy")
        assert_violation("namespace-isolation", [team_namespace(), default_deny()], "no deny-all AuthorizationPolicy")

    def test_a_permissive_network_policy_is_not_default_deny(self):
        allow = k8s("NetworkPolicy", "default-deny", "orders", "networking.k8s.io/v1",
                    spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [{}]})
        assert_violation("namespace-isolation", [team_namespace(), allow, deny_all()], "no default-deny NetworkPolicy")

    def test_isolated_namespace(self):
        assert_no_violation("namespace-isolation", [team_namespace(), default_deny(), deny_all()])

    def test_platform_namespaces_are_not_app_namespaces(self):
        assert_no_violation("namespace-isolation", [k8s("Namespace", "istio-system")])


def peer(mode):
    return k8s("PeerAuthentication", "default", "istio-system", "security.istio.io/v1", spec={"mtls": {"mode": mode}})


class TestMeshMtls:
    def test_permissive_in_prod(self):
        assert_violation("mesh-mtls-strict-in-prod", [peer("PERMISSIVE")], "mesh-wide mTLS mode is PERMISSIVE", PROD)

    def test_missing_in_prod(self):
        assert_violation("mesh-mtls-strict-in-prod", [], "no mesh-wide PeerAuthentication", PROD)

    def test_strict_in_prod_and_permissive_in_dev(self):
        assert_no_violation("mesh-mtls-strict-in-prod", [peer("STRICT")], PROD)
        assert_no_violation("mesh-mtls-strict-in-prod", [peer("PERMISSIVE")], DEV)


class TestHelmChartPinned:
    def test_unpinned(self):
        release = resource("kubernetes:helm.sh/v3:Release", {"chart": "istiod", "version": ""}, name="istiod")
        assert_violation("helm-chart-pinned", release, "Helm release istiod (istiod) has no chart version")

    def test_pinned(self):
        assert_no_violation("helm-chart-pinned", resource("kubernetes:helm.sh/v3:Release", {"chart": "istiod", "version": "1.30.3"}))


def constraint(kind="K8sPSPPrivilegedContainer", action="deny", annotations=None, **spec):
    body = {"enforcementAction": action, "match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}, **spec}
    return k8s(kind, kind.lower(), api_version="constraints.gatekeeper.sh/v1beta1",
               type_=f"kubernetes:constraints.gatekeeper.sh/v1beta1:{kind}", metadata={"annotations": annotations or {}}, spec=body)


class TestGatekeeperEnforcement:
    def test_warn_constraint_in_prod(self):
        assert_violation("gatekeeper-deny-in-prod", [constraint(action="warn")], "enforces with 'warn'", PROD)

    def test_deny_in_prod_and_warn_in_dev(self):
        assert_no_violation("gatekeeper-deny-in-prod", [constraint(action="deny")], PROD)
        assert_no_violation("gatekeeper-deny-in-prod", [constraint(action="warn")], DEV)


class TestExpiredExemptions:
    def exempted(self, expires):
        note = json.dumps([{"namespaces": ["legacy"], "reason": "migration", "expires": expires}])
        return constraint(annotations={"secstack.io/exemptions": note})

    def test_expired(self):
        assert_violation("no-expired-exemptions", [self.exempted("2026-01-31")], "exemption for legacy expired on 2026-01-31", {"today": "2026-12-03"})

    def test_current_and_open_ended(self):
        assert_no_violation("no-expired-exemptions", [self.exempted("2027-01-31")], {"today": "2026-12-03"})
        assert_no_violation("no-expired-exemptions", [constraint(annotations={"secstack.io/exemptions": json.dumps([{"reason": "r"}])})])


def privileged_deployment(namespace="orders"):
    pod = {"containers": [{"name": "app", "image": "registry.cn-hangzhou.aliyuncs.com/shop/app:1.0", "securityContext": {"privileged": True}}]}
    return k8s("Deployment", "bad", namespace, "apps/v1", spec={"selector": {"matchLabels": {"app": "bad"}}, "template": {"metadata": {"labels": {"app": "bad"}}, "spec": pod}})


class TestGatekeeperAtPreview:
    def test_deny_constraint_catches_a_privileged_deployment(self):
        workload_match = {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}, {"apiGroups": ["apps"], "kinds": ["Deployment"]}]}
        found = violations("gatekeeper-deny", [constraint(match=workload_match), privileged_deployment()])
        assert found and "K8sPSPPrivilegedContainer" in found[0] and "orders/bad" in found[0]
        assert violations("gatekeeper-warn", [constraint(match=workload_match), privileged_deployment()]) == []

    def test_warn_constraint_reports_under_the_advisory_policy(self):
        workload_match = {"kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}]}
        found = violations("gatekeeper-warn", [constraint(action="warn", match=workload_match), privileged_deployment()])
        assert len(found) == 1 and "privileged" in found[0].lower()

    def test_excluded_namespace_is_honoured(self):
        match = {"kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}], "excludedNamespaces": ["orders"]}
        assert_no_violation("gatekeeper-deny", [constraint(match=match), privileged_deployment()])
