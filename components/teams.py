"""Team: an app team's namespaces with Pod Security, least-privilege RBAC, quotas and default-deny networking."""
from __future__ import annotations

from typing import NotRequired, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.common import child, meta

# What a viewer may read and a deployer may change. Secrets are absent on purpose: they arrive through
# ExternalSecrets, and reading them would let a viewer impersonate the service.
VIEW_RULES = [
    {"apiGroups": [""], "resources": ["pods", "pods/log", "services", "endpoints", "configmaps", "events", "serviceaccounts"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets", "statefulsets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["get", "list", "watch"]},
]
CHANGE = ["get", "list", "watch", "create", "update", "patch", "delete"]
DEPLOY_RULES = [
    {"apiGroups": [""], "resources": ["pods", "pods/log", "events", "endpoints", "serviceaccounts"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["services", "configmaps"], "verbs": CHANGE},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"], "verbs": CHANGE},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": CHANGE},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": CHANGE},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": CHANGE},
]


class ServiceAccountArgs(TypedDict):
    name: str
    namespace: str
    annotations: NotRequired[dict[str, str]]  # e.g. the RRSA role (components/identity.py)


class QuotaArgs(TypedDict):
    requests_cpu: str
    requests_memory: str
    limits_cpu: str
    limits_memory: str
    pods: int


class TeamArgs(TypedDict):
    """An app team: its namespaces, identities, groups and quota."""

    name: str
    """Team name; labels every namespace (`secstack.io/team`) and prefixes its Roles."""
    owner: str
    """Contact of the owning lead, recorded as the `secstack.io/owner` namespace annotation."""
    namespaces: list[str]
    """Namespaces the team owns."""
    pod_security: str
    """Pod Security Admission level enforced on the namespaces: restricted | baseline."""
    service_accounts: list[ServiceAccountArgs]
    """Workload identities (token automount off); annotations carry e.g. the RRSA role."""
    viewer_groups: list[str]
    """Groups bound to the read-only viewer Role (no Secret access)."""
    deployer_groups: list[str]
    """Groups bound to the deployer Role (workloads, services, config maps; no Secrets, no RBAC)."""
    quota: QuotaArgs
    """ResourceQuota per namespace (LoadBalancer and NodePort services are always 0)."""
    istio_injection: NotRequired[bool]
    """Sidecar injection label (default true)."""
    ingress_from_namespaces: NotRequired[list[str]]
    """Namespaces whose pods call into this team (NetworkPolicy ingress)."""
    egress_to_namespaces: NotRequired[list[str]]
    """Namespaces this team calls (NetworkPolicy egress)."""
    namespace_labels: NotRequired[dict[str, str]]
    """Extra namespace labels, e.g. RRSA webhook injection."""


def _ns_selector(namespace: str) -> dict:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


class Team(pulumi.ComponentResource):
    """An app team's namespaces with Pod Security, least-privilege RBAC, quotas and default-deny networking."""

    namespaces: pulumi.Output[list[str]]

    def __init__(self, name: str, args: TeamArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:teams:Team", name, None, opts)
        team = args["name"]
        level = args["pod_security"]
        created = []
        for ns in args["namespaces"]:
            labels = {
                "istio-injection": "enabled" if args.get("istio_injection", True) else "disabled",
                "pod-security.kubernetes.io/enforce": level,
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
                "secstack.io/team": team,
                "team": team,
                **(args.get("namespace_labels") or {}),
            }
            namespace = k8s.core.v1.Namespace(
                ns, metadata=meta(ns, labels=labels, annotations={"secstack.io/owner": args["owner"]}), opts=child(self)
            )
            created.append(namespace)
            in_ns = child(self, [namespace])
            self._rbac(ns, team, args, in_ns)
            self._limits(ns, args["quota"], in_ns)
            self._network(ns, args, in_ns)
        for sa in args["service_accounts"]:
            owner = created[args["namespaces"].index(sa["namespace"])]
            k8s.core.v1.ServiceAccount(
                f"{sa['namespace']}-{sa['name']}",
                metadata=meta(sa["name"], sa["namespace"], labels={"team": team}, **({"annotations": dict(sa["annotations"])} if sa.get("annotations") else {})),
                # Pods that need the API mount a projected token explicitly; the default grants nothing to steal.
                automount_service_account_token=False,
                opts=child(self, [owner]),
            )
        self.namespaces = pulumi.Output.from_input(list(args["namespaces"]))
        self.namespace_resources = created
        self.register_outputs({"namespaces": self.namespaces})

    def _rbac(self, ns: str, team: str, args: TeamArgs, opts: pulumi.ResourceOptions) -> None:
        for role, rules, groups in (("viewer", VIEW_RULES, args["viewer_groups"]), ("deployer", DEPLOY_RULES, args["deployer_groups"])):
            k8s.rbac.v1.Role(f"{ns}-{role}", metadata=meta(f"{team}-{role}", ns), rules=rules, opts=opts)
            if groups:
                k8s.rbac.v1.RoleBinding(
                    f"{ns}-{role}",
                    metadata=meta(f"{team}-{role}", ns),
                    role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{team}-{role}"},
                    subjects=[{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups],
                    opts=opts,
                )

    def _limits(self, ns: str, quota: QuotaArgs, opts: pulumi.ResourceOptions) -> None:
        k8s.core.v1.ResourceQuota(
            f"{ns}-quota",
            metadata=meta("team-quota", ns),
            spec={
                "hard": {
                    "requests.cpu": quota["requests_cpu"],
                    "requests.memory": quota["requests_memory"],
                    "limits.cpu": quota["limits_cpu"],
                    "limits.memory": quota["limits_memory"],
                    "pods": str(quota["pods"]),
                    # Exposure goes through the mesh ingress gateway, never straight from a team namespace.
                    "services.loadbalancers": "0",
                    "services.nodeports": "0",
                }
            },
            opts=opts,
        )
        k8s.core.v1.LimitRange(
            f"{ns}-limits",
            metadata=meta("container-defaults", ns),
            spec={
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": "500m", "memory": "512Mi"},
                        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                        "max": {"cpu": "4", "memory": "8Gi"},
                    }
                ]
            },
            opts=opts,
        )

    def _network(self, ns: str, args: TeamArgs, opts: pulumi.ResourceOptions) -> None:
        k8s.networking.v1.NetworkPolicy(
            f"{ns}-default-deny",
            metadata=meta("default-deny", ns),
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            opts=opts,
        )
        dns = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
        egress = [
            {"to": [{**_ns_selector("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}], "ports": dns},
            # Sidecars fetch config and certificates from istiod (xDS/CA on 15012, webhook 15017).
            {"to": [{**_ns_selector("istio-system"), "podSelector": {"matchLabels": {"app": "istiod"}}}], "ports": [{"protocol": "TCP", "port": 15012}]},
        ]
        peers = sorted(set(args.get("egress_to_namespaces") or []) | {ns})
        egress.append({"to": [_ns_selector(p) for p in peers]})
        ingress_from = sorted(set(args.get("ingress_from_namespaces") or []) | {ns, "istio-system", "istio-ingress"})
        k8s.networking.v1.NetworkPolicy(
            f"{ns}-allow-mesh",
            metadata=meta("allow-mesh", ns),
            spec={
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{"from": [_ns_selector(p) for p in ingress_from]}],
                "egress": egress,
            },
            opts=opts,
        )
