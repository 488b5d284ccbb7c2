"""IstioMesh, as each committed stack renders it."""
from __future__ import annotations

import pytest

from tests.conftest import STACKS, rendered


def _policies(preview, name=None, namespace=None):
    return preview.find("AuthorizationPolicy", name, namespace)


@pytest.mark.parametrize("stack", STACKS)
def test_mesh_wide_mtls_is_strict(stack):
    [peer] = rendered(stack).find("PeerAuthentication")
    assert peer["metadata"] == {"name": "default", "namespace": "istio-system", "labels": peer["metadata"]["labels"]}
    assert peer["spec"] == {"mtls": {"mode": "STRICT"}}


@pytest.mark.parametrize("stack", STACKS)
def test_every_team_namespace_has_a_deny_all_policy(stack):
    preview = rendered(stack)
    team_namespaces = [ns for team in preview.settings.teams for ns in team.namespaces]
    assert team_namespaces
    for ns in team_namespaces:
        [deny] = _policies(preview, "deny-all", ns)
        assert deny["spec"] == {}, "an empty spec is Istio's allow-nothing policy"


@pytest.mark.parametrize("stack", STACKS)
def test_service_callers_are_spiffe_principals(stack):
    preview = rendered(stack)
    [payments] = _policies(preview, "allow-payments-api-callers", "payments")
    assert payments["spec"]["action"] == "ALLOW"
    assert payments["spec"]["selector"] == {"matchLabels": {"app": "payments-api"}}
    [rule] = payments["spec"]["rules"]
    assert rule["from"] == [{"source": {"principals": ["cluster.local/ns/orders/sa/orders-api"]}}]
    assert rule["to"] == [{"operation": {"ports": ["8443"]}}]


@pytest.mark.parametrize("stack", STACKS)
def test_jwt_protected_api_requires_token_and_claims(stack):
    preview = rendered(stack)
    jwt = preview.settings.mesh.jwt
    [request_auth] = preview.find("RequestAuthentication", "jwt-orders-api", "orders")
    [rule] = request_auth["spec"]["jwtRules"]
    assert rule["issuer"] == jwt.issuer
    assert rule["jwksUri"] == str(jwt.jwks_uri)
    assert rule["audiences"] == ["shop-api"]
    assert rule["forwardOriginalToken"] is False

    [policy] = _policies(preview, "require-jwt-orders-api", "orders")
    read, write = policy["spec"]["rules"]
    for r in (read, write):
        source = r["from"][0]["source"]
        assert source["requestPrincipals"] == [f"{jwt.issuer}/*"]
        assert source["principals"] == ["cluster.local/ns/istio-ingress/sa/istio-ingressgateway"]
    assert read["to"][0]["operation"]["methods"] == ["GET"]
    assert read["when"] == [{"key": "request.auth.claims[scope]", "values": ["orders:read"]}]
    assert write["to"][0]["operation"] == {"paths": ["/api/orders"], "methods": ["POST"], "ports": ["8080"]}
    assert {"key": "request.auth.claims[roles]", "values": ["customer"]} in write["when"]
    assert {"key": "request.auth.claims[scope]", "values": ["orders:write"]} in write["when"]


def test_internal_service_has_no_jwt_policy():
    assert rendered("prod").find("RequestAuthentication", namespace="payments") == []


@pytest.mark.parametrize("stack,replicas,outbound", [("dev", 1, "ALLOW_ANY"), ("staging", 2, "REGISTRY_ONLY"), ("prod", 3, "REGISTRY_ONLY")])
def test_istiod_release_is_pinned_and_hardened(stack, replicas, outbound):
    releases = {r["name"]: r for r in rendered(stack).helm_releases()}
    assert {"istio-base", "istio-cni", "istiod"} <= set(releases)
    istiod = releases["istiod"]
    assert (istiod["chart"], istiod["version"]) == ("istiod", "1.30.3")
    assert istiod["repo"] == "https://istio-release.storage.googleapis.com/charts"
    assert istiod["values"]["replicaCount"] == replicas
    assert istiod["values"]["cni"] == {"enabled": True}
    assert istiod["values"]["global"]["proxy"]["privileged"] is False
    assert istiod["values"]["meshConfig"]["outboundTrafficPolicy"] == {"mode": outbound}
    assert istiod["values"]["meshConfig"]["accessLogEncoding"] == "JSON"


def test_istiod_waits_for_base_and_cni():
    preview = rendered("prod")
    by_name = {r.name: r for r in preview.of_type("kubernetes:helm.sh/v3:Release")}
    assert {by_name["istio-base"].urn, by_name["istio-cni"].urn} <= set(by_name["istiod"].dependencies)
    [peer] = preview.of_type("kubernetes:security.istio.io/v1:PeerAuthentication")
    assert by_name["istiod"].urn in peer.dependencies
