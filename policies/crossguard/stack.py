"""Stack posture policies: isolation of every app namespace, mesh mode, pinned charts, enforcement, exemptions."""
from __future__ import annotations

import datetime as dt
import json

from pulumi_policy import ResourceValidationArgs, Severity, StackValidationArgs

from policies.crossguard.base import Meta, environment, resource_policy, stack_policy
from policies.crossguard.kubernetes import CONSTRAINT_PREFIX

NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
AUTHZ = "kubernetes:security.istio.io/v1:AuthorizationPolicy"
PEER_AUTH = "kubernetes:security.istio.io/v1:PeerAuthentication"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
TEAM_LABEL = "secstack.io/team"
EXEMPTIONS_ANNOTATION = "secstack.io/exemptions"

ISOLATION = Meta(
    "namespace-isolation",
    Severity.HIGH,
    "Every app namespace has a default-deny NetworkPolicy and a deny-all AuthorizationPolicy.",
    "Declare the namespace through the Team component (it adds both) and keep the mesh's deny-all policy.",
)
MTLS_STRICT = Meta(
    "mesh-mtls-strict-in-prod",
    Severity.CRITICAL,
    "The mesh-wide PeerAuthentication is STRICT in prod.",
    "Set secstack:mesh.mtlsMode to STRICT (remove the override and its reason).",
)
CHART_PINNED = Meta(
    "helm-chart-pinned",
    Severity.MEDIUM,
    "Every Helm release pins a chart version.",
    "Pin the chart with a ChartPin in components/charts.py.",
)
GATEKEEPER_DENY_IN_PROD = Meta(
    "gatekeeper-deny-in-prod",
    Severity.HIGH,
    "In prod every Gatekeeper constraint enforces with `deny`.",
    "Set secstack:admission.enforcementAction to deny (and remove per-rule downgrades).",
)
NO_EXPIRED_EXEMPTIONS = Meta(
    "no-expired-exemptions",
    Severity.HIGH,
    "No resource carries an exemption past its expiry date.",
    "Fix the exempted workload and remove the exemption, or renew it with a new reason and date.",
)


def _by_type(resources, type_token):
    return [r for r in resources if r.resource_type == type_token]


def _meta(resource) -> dict:
    return dict(resource.props.get("metadata") or {})


def _is_default_deny(policy) -> bool:
    spec = dict(policy.props.get("spec") or {})
    return (
        spec.get("podSelector") in ({}, None)
        and set(spec.get("policyTypes") or []) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def validate_isolation(args: StackValidationArgs, report) -> None:
    team_namespaces = [r for r in _by_type(args.resources, NAMESPACE) if TEAM_LABEL in (_meta(r).get("labels") or {})]
    # One pass over the policies, then a lookup per namespace (stacks have thousands of resources).
    isolated = {_meta(p).get("namespace") for p in _by_type(args.resources, NETWORK_POLICY) if _is_default_deny(p)}
    denied = {_meta(p).get("namespace") for p in _by_type(args.resources, AUTHZ) if not p.props.get("spec")}
    for ns in team_namespaces:
        name = _meta(ns).get("name")
        default_deny = name in isolated
        deny_all = name in denied
        if not default_deny:
            report(f"namespace {name} has no default-deny NetworkPolicy", ns.urn)
        if not deny_all:
            report(f"namespace {name} has no deny-all AuthorizationPolicy", ns.urn)


def validate_mtls(args: StackValidationArgs, report) -> None:
    if environment(args) != "prod":
        return
    mesh_wide = [p for p in _by_type(args.resources, PEER_AUTH) if _meta(p).get("namespace") == "istio-system" and not (p.props.get("spec") or {}).get("selector")]
    if not mesh_wide:
        report("no mesh-wide PeerAuthentication in istio-system")
    for p in mesh_wide:
        mode = ((p.props.get("spec") or {}).get("mtls") or {}).get("mode")
        if mode != "STRICT":
            report(f"mesh-wide mTLS mode is {mode or 'unset'} (must be STRICT in prod)", p.urn)


def validate_chart_pinned(args: ResourceValidationArgs, report) -> None:
    if args.resource_type == HELM_RELEASE and not args.props.get("version"):
        report(f"Helm release {args.name} ({args.props.get('chart')}) has no chart version")


def validate_enforcement(args: StackValidationArgs, report) -> None:
    if environment(args) != "prod":
        return
    for c in args.resources:
        if c.resource_type.startswith(CONSTRAINT_PREFIX):
            action = (c.props.get("spec") or {}).get("enforcementAction", "deny")
            if action != "deny":
                report(f"constraint {c.props.get('kind')}/{_meta(c).get('name')} enforces with {action!r}", c.urn)


def validate_exemptions(args: StackValidationArgs, report) -> None:
    today = dt.date.fromisoformat((args.get_config() or {}).get("today") or dt.date.today().isoformat())
    for r in args.resources:
        raw = (_meta(r).get("annotations") or {}).get(EXEMPTIONS_ANNOTATION)
        if not raw:
            continue
        try:
            exemptions = json.loads(raw)
        except json.JSONDecodeError:
            report(f"{r.name}: annotation {EXEMPTIONS_ANNOTATION} is not JSON", r.urn)
            continue
        for e in exemptions if isinstance(exemptions, list) else []:
            expires = e.get("expires") if isinstance(e, dict) else None
            if expires and dt.date.fromisoformat(str(expires)[:10]) < today:
                what = ", ".join(e.get("namespaces", []) + e.get("images", [])) or "?"
                report(f"{r.name}: exemption for {what} expired on {expires} (reason was: {e.get('reason')})", r.urn)


def policies():
    return [
        stack_policy(ISOLATION, validate_isolation),
        stack_policy(MTLS_STRICT, validate_mtls),
        resource_policy(CHART_PINNED, validate_chart_pinned),
        stack_policy(GATEKEEPER_DENY_IN_PROD, validate_enforcement),
        stack_policy(NO_EXPIRED_EXEMPTIONS, validate_exemptions),
    ]
