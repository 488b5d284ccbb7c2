"""The checkout team's infrastructure: its Team (namespace, RBAC, quotas, default-deny), a JWT-protected service
behind the mesh policies, and its payment-provider token in Secrets Manager, delivered into its namespace."""
from __future__ import annotations

from typing import TypedDict

import pulumi

from components.common import custom_resource, meta
from components.mesh import SECURITY_API, request_authentication_rule, spiffe_principal
from components.secrets import Secrets
from components.teams import Team

TEAM, NAMESPACE, SERVICE, PORT = "checkout", "checkout", "checkout-api", 8080
GATEWAY = spiffe_principal("istio-ingress", "istio-ingressgateway")


class AppConfig(TypedDict):
    environment: str
    region: str
    issuer: str
    audience: str
    secrets_key_id: pulumi.Input[str]
    secrets_key_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    provider_token: pulumi.Input[str]  # a secret Output


def declare(cfg: AppConfig) -> dict[str, pulumi.Output]:
    prod = cfg["environment"] == "prod"
    team = Team(TEAM, {
        "name": TEAM,
        "owner": "checkout-lead@shop.example.com",
        "namespaces": [NAMESPACE],
        "pod_security": "restricted",
        "service_accounts": [{"name": SERVICE, "namespace": NAMESPACE}],
        "viewer_groups": ["checkout-devs"],
        "deployer_groups": ["checkout-ci"],
        "quota": {"requests_cpu": "2", "requests_memory": "4Gi", "limits_cpu": "4", "limits_memory": "8Gi", "pods": 20},
        "ingress_from_namespaces": ["istio-ingress"],
    })
    in_team = pulumi.ResourceOptions(parent=team, depends_on=team.namespace_resources)
    jwt = {"issuer": cfg["issuer"], "jwks_uri": cfg["issuer"].rstrip("/") + "/.well-known/jwks.json", "audiences": [cfg["audience"]]}
    selector = {"matchLabels": {"app": SERVICE}}
    custom_resource(f"{SERVICE}-jwt", SECURITY_API, "RequestAuthentication", meta(f"jwt-{SERVICE}", NAMESPACE),
                    {"selector": selector, "jwtRules": [request_authentication_rule(jwt)]}, in_team)
    custom_resource(f"{SERVICE}-require-jwt", SECURITY_API, "AuthorizationPolicy", meta(f"require-jwt-{SERVICE}", NAMESPACE), {
        "selector": selector,
        "action": "ALLOW",
        "rules": [{
            # Only through the ingress gateway, only with a token of our issuer, only the checkout endpoints.
            "from": [{"source": {"principals": [GATEWAY], "requestPrincipals": [f"{cfg['issuer']}/*"]}}],
            "to": [{"operation": {"paths": ["/checkout", "/checkout/*"], "methods": ["GET", "POST"], "ports": [str(PORT)]}}],
            "when": [{"key": "request.auth.claims[roles]", "values": ["customer"]}],
        }],
    }, in_team)
    custom_resource(f"{NAMESPACE}-deny-all", SECURITY_API, "AuthorizationPolicy", meta("deny-all", NAMESPACE), {}, in_team)
    secrets = Secrets("checkout-secrets", {
        "environment": cfg["environment"],
        "region": cfg["region"],
        "protect": prod,
        "recovery_window_in_days": 30 if prod else 7,
        "polling_interval_seconds": 120,
        "secrets_key_id": cfg["secrets_key_id"],
        "secrets_key_arn": cfg["secrets_key_arn"],
        "oidc_issuer_url": cfg["oidc_issuer_url"],
        "oidc_provider_arn": cfg["oidc_provider_arn"],
        "controller_role_name": f"checkout-{cfg['environment']}-secret-manager",
        "entries": [{
            "name": "payment-provider-token",
            "secret_name": f"checkout/{cfg['environment']}/payment-provider-token",
            "data": cfg["provider_token"],
            "type": "Generic",
            "description": "token of the payment provider",
            "version_id": "v1",
            "consumers": [[NAMESPACE, SERVICE]],
            "secret_key": "token",
        }],
        "tags": {"team": TEAM, "environment": cfg["environment"]},
    }, in_team)
    return {"namespaces": team.namespaces, "secretArns": pulumi.Output.from_input(secrets.secret_arns)}
