"""IstioMesh: Istio with mesh-wide mTLS, default-deny authorization, SPIFFE allow rules and JWT on the edge."""
from __future__ import annotations

import json
from typing import Any, NotRequired, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.charts import ISTIO_BASE, ISTIO_CNI, ISTIO_GATEWAY, ISTIOD
from components.common import child, custom_resource, deep_merge, helm_release, meta

SECURITY_API = "security.istio.io/v1"
GATEWAY_NAMESPACE = "istio-ingress"
GATEWAY_NAME = "istio-ingressgateway"
AUTH_CONFIGMAP = "secstack-auth"  # = secstack.auth.CONFIGMAP_NAME / CONFIG_KEY
AUTH_CONFIG_KEY = "auth.json"


class JwtProviderArgs(TypedDict):
    """The token issuer the mesh trusts (the same settings the services verify with)."""

    issuer: str
    jwks_uri: str
    audiences: list[str]
    forward_original_token: NotRequired[bool]
    roles_claim: NotRequired[str]
    scopes_claim: NotRequired[str]
    # Service-side only (the `secstack-auth` ConfigMap); absent keys take the JwtAuthSettings defaults.
    algorithms: NotRequired[list[str]]
    leeway_seconds: NotRequired[int]
    required_claims: NotRequired[list[str]]


class JwtRuleArgs(TypedDict):
    paths: list[str]
    methods: list[str]
    roles: NotRequired[list[str]]
    scopes: NotRequired[list[str]]


class MeshServiceArgs(TypedDict):
    """A workload (selected by its `app` label) and who may call it."""

    namespace: str
    app: str
    port: int
    allowed_principals: list[str]
    public: NotRequired[bool]
    jwt_rules: NotRequired[list[JwtRuleArgs]]


class IstioMeshArgs(TypedDict):
    mtls_mode: str
    mesh_namespaces: list[str]
    services: list[MeshServiceArgs]
    jwt: NotRequired[Optional[JwtProviderArgs]]
    trust_domain: NotRequired[str]
    istiod_replicas: NotRequired[int]
    outbound_traffic_policy: NotRequired[str]
    access_log_json: NotRequired[bool]
    istiod_values: NotRequired[dict[str, Any]]


def spiffe_principal(namespace: str, service_account: str, trust_domain: str = "cluster.local") -> str:
    """Istio principals are SPIFFE ids without the scheme."""
    return f"{trust_domain}/ns/{namespace}/sa/{service_account}"


class IstioMesh(pulumi.ComponentResource):
    """Istio with mesh-wide mTLS, default-deny authorization, SPIFFE allow rules and JWT on the edge."""

    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: IstioMeshArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:mesh:IstioMesh", name, None, opts)
        trust_domain = args.get("trust_domain", "cluster.local")
        system = k8s.core.v1.Namespace(
            "istio-system",
            metadata=meta(
                "istio-system",
                # istio-cni's node agent needs host access; the namespace is excluded from admission policies.
                labels={"pod-security.kubernetes.io/enforce": "privileged", "secstack.io/system": "true"},
            ),
            opts=child(self),
        )
        base = helm_release("istio-base", ISTIO_BASE, "istio-system", {"defaultRevision": "default"}, child(self, [system]))
        cni = helm_release(
            "istio-cni",
            ISTIO_CNI,
            "istio-system",
            # With the CNI plugin the pods need no NET_ADMIN init container, so app namespaces can enforce PSS.
            {"chained": True, "excludeNamespaces": ["kube-system", "istio-system"], "global": {"logAsJson": True}},
            child(self, [base]),
        )
        istiod = helm_release("istiod", ISTIOD, "istio-system", self._istiod_values(args, trust_domain), child(self, [base, cni]))
        ready = [istiod]

        peer = custom_resource(
            "mesh-mtls",
            SECURITY_API,
            "PeerAuthentication",
            meta("default", "istio-system"),
            {"mtls": {"mode": args["mtls_mode"]}},
            child(self, ready),
        )
        gateway = self._gateway(args, istiod) if any(s.get("public") for s in args["services"]) else None

        for ns in args["mesh_namespaces"]:
            # An ALLOW policy with no rules matches nothing: every request is denied unless another policy allows it.
            custom_resource(f"{ns}-deny-all", SECURITY_API, "AuthorizationPolicy", meta("deny-all", ns), {}, child(self, ready))

        gateway_principal = spiffe_principal(GATEWAY_NAMESPACE, GATEWAY_NAME, trust_domain)
        for service in args["services"]:
            self._service_policies(service, args.get("jwt"), gateway_principal, ready)
        jwt = args.get("jwt")
        if jwt is not None:
            for ns in sorted({s["namespace"] for s in args["services"] if s.get("jwt_rules")}):
                self._auth_configmap(ns, jwt)

        self.namespace = pulumi.Output.from_input("istio-system")
        self.register_outputs({"namespace": self.namespace, "mtlsMode": args["mtls_mode"], "peerAuthentication": peer.id})
        self.gateway = gateway

    @staticmethod
    def _istiod_values(args: IstioMeshArgs, trust_domain: str) -> dict[str, Any]:
        replicas = args.get("istiod_replicas", 1)
        values = {
            "replicaCount": replicas,
            "autoscaleEnabled": replicas > 1,
            "autoscaleMin": replicas,
            "seccompProfile": {"type": "RuntimeDefault"},
            "cni": {"enabled": True},
            "global": {"logAsJson": True, "proxy": {"privileged": False}},
            "meshConfig": {
                "trustDomain": trust_domain,
                "accessLogFile": "/dev/stdout",
                "accessLogEncoding": "JSON" if args.get("access_log_json", True) else "TEXT",
                "outboundTrafficPolicy": {"mode": args.get("outbound_traffic_policy", "REGISTRY_ONLY")},
            },
        }
        return deep_merge(values, args.get("istiod_values") or {})

    def _gateway(self, args: IstioMeshArgs, istiod: pulumi.Resource) -> pulumi.Resource:
        ns = k8s.core.v1.Namespace(
            GATEWAY_NAMESPACE,
            metadata=meta(GATEWAY_NAMESPACE, labels={"istio-injection": "enabled", "pod-security.kubernetes.io/enforce": "baseline"}),
            opts=child(self),
        )
        values = {
            "name": GATEWAY_NAME,
            "replicaCount": max(2, args.get("istiod_replicas", 1)),
            "service": {"type": "LoadBalancer"},
            "podDisruptionBudget": {"minAvailable": 1},
            # The chart's own default plus a seccomp profile, which the restricted Pod Security Standard requires.
            "containerSecurityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "privileged": False,
                "readOnlyRootFilesystem": True,
                "runAsNonRoot": True,
                "runAsUser": 1337,
                "runAsGroup": 1337,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        }
        release = helm_release(GATEWAY_NAME, ISTIO_GATEWAY, GATEWAY_NAMESPACE, values, child(self, [ns, istiod]))
        custom_resource(
            "gateway-allow-ingress",
            SECURITY_API,
            "AuthorizationPolicy",
            meta("allow-ingress", GATEWAY_NAMESPACE),
            {"selector": {"matchLabels": {"istio": "ingressgateway"}}, "action": "ALLOW", "rules": [{"to": [{"operation": {"ports": ["80", "443"]}}]}]},
            child(self, [release]),
        )
        return release

    def _service_policies(
        self, service: MeshServiceArgs, jwt: Optional[JwtProviderArgs], gateway_principal: str, ready: list
    ) -> None:
        ns, app = service["namespace"], service["app"]
        selector = {"matchLabels": {"app": app}}
        port = str(service["port"])
        if service["allowed_principals"]:
            custom_resource(
                f"{ns}-{app}-allow-callers",
                SECURITY_API,
                "AuthorizationPolicy",
                meta(f"allow-{app}-callers", ns),
                {
                    "selector": selector,
                    "action": "ALLOW",
                    "rules": [
                        {
                            "from": [{"source": {"principals": sorted(service["allowed_principals"])}}],
                            "to": [{"operation": {"ports": [port]}}],
                        }
                    ],
                },
                child(self, ready),
            )
        rules = service.get("jwt_rules") or []
        if not rules or jwt is None:
            return
        custom_resource(
            f"{ns}-{app}-jwt",
            SECURITY_API,
            "RequestAuthentication",
            meta(f"jwt-{app}", ns),
            {"selector": selector, "jwtRules": [request_authentication_rule(jwt)]},
            child(self, ready),
        )
        custom_resource(
            f"{ns}-{app}-require-jwt",
            SECURITY_API,
            "AuthorizationPolicy",
            meta(f"require-jwt-{app}", ns),
            {"selector": selector, "action": "ALLOW", "rules": [self._jwt_rule(rule, jwt, service, gateway_principal, port) for rule in rules]},
            child(self, ready),
        )

    def _auth_configmap(self, ns: str, jwt: JwtProviderArgs) -> None:
        """What `secstack.auth.TokenVerifier.from_configmap_dir` reads: the issuer the RequestAuthentication trusts."""
        k8s.core.v1.ConfigMap(
            f"{ns}-{AUTH_CONFIGMAP}",
            metadata=meta(AUTH_CONFIGMAP, ns, labels={"app.kubernetes.io/component": "auth"}),
            data={AUTH_CONFIG_KEY: json.dumps(service_auth_config(jwt), indent=2, sort_keys=True) + "\n"},
            # Immutable: a team deployer (who may edit ConfigMaps) cannot repoint its services at another issuer
            # in place; a settings change replaces the object.
            immutable=True,
            opts=child(self, delete_before_replace=True),
        )

    @staticmethod
    def _jwt_rule(rule: JwtRuleArgs, jwt: JwtProviderArgs, service: MeshServiceArgs, gateway_principal: str, port: str) -> dict:
        source: dict[str, Any] = {"requestPrincipals": [f"{jwt['issuer']}/*"]}
        if service.get("public"):
            source["principals"] = [gateway_principal]
        # One condition per required value: Istio ORs the values of a condition and ANDs conditions.
        when = [{"key": f"request.auth.claims[{jwt.get('roles_claim', 'roles')}]", "values": [role]} for role in rule.get("roles") or []]
        when += [{"key": f"request.auth.claims[{jwt.get('scopes_claim', 'scope')}]", "values": [scope]} for scope in rule.get("scopes") or []]
        out: dict[str, Any] = {
            "from": [{"source": source}],
            "to": [{"operation": {"paths": list(rule["paths"]), "methods": list(rule["methods"]), "ports": [port]}}],
        }
        if when:
            out["when"] = when
        return out


def service_auth_config(jwt: JwtProviderArgs) -> dict[str, Any]:
    """`auth.json` of the `secstack-auth` ConfigMap: JwtAuthSettings keys (camelCase), from the same args as
    `request_authentication_rule`, so the service and the mesh cannot disagree."""
    rule = request_authentication_rule(jwt)
    out: dict[str, Any] = {"issuer": rule["issuer"], "jwksUri": rule["jwksUri"], "audiences": rule["audiences"]}
    for key, name in (("algorithms", "algorithms"), ("leeway_seconds", "leewaySeconds"), ("required_claims", "requiredClaims"),
                      ("roles_claim", "rolesClaim"), ("scopes_claim", "scopesClaim")):
        if key in jwt:
            out[name] = list(jwt[key]) if isinstance(jwt[key], list) else jwt[key]  # type: ignore[literal-required]
    return out


def request_authentication_rule(jwt: JwtProviderArgs) -> dict[str, Any]:
    """The RequestAuthentication jwtRules entry for an issuer (also what `secstack-auth` ConfigMaps mirror)."""
    rule: dict[str, Any] = {
        "issuer": jwt["issuer"],
        "jwksUri": jwt["jwks_uri"],
        "audiences": list(jwt["audiences"]),
        "forwardOriginalToken": bool(jwt.get("forward_original_token", False)),
    }
    scopes_claim = jwt.get("scopes_claim", "scope")
    if scopes_claim in ("scope", "scp"):
        # OAuth scopes are one space-separated string; without this `values: [orders:write]` never matches.
        rule["spaceDelimitedClaims"] = [scopes_claim]
    return rule
