"""Gatekeeper's Rego, enforced at preview: every Kubernetes resource of the stack is evaluated against the
Constraints the same stack declares (same parameters, exemptions and excluded namespaces) — one source, two
enforcement points."""
from __future__ import annotations

from typing import Iterable

from pulumi_policy import EnforcementLevel, PolicyResource, Severity, StackValidationArgs

from policies.crossguard.base import Meta, stack_policy

CONSTRAINT_PREFIX = "kubernetes:constraints.gatekeeper.sh/"
SKIPPED_PREFIXES = ("kubernetes:helm.sh/", "pulumi:providers:", CONSTRAINT_PREFIX, "kubernetes:templates.gatekeeper.sh/")

DENY = Meta(
    "gatekeeper-deny",
    Severity.HIGH,
    "Kubernetes resources pass every Gatekeeper constraint the stack enforces with `deny`.",
    "Fix the object as the message says, or add an exemption with a reason in secstack:admission.exemptions.",
)
WARN = Meta(
    "gatekeeper-warn",
    Severity.MEDIUM,
    "Kubernetes resources pass the Gatekeeper constraints the stack enforces with `warn` (reported, not blocking).",
    "Fix the object before the environment moves to `deny`.",
    EnforcementLevel.ADVISORY,
)


def constraints(resources: Iterable[PolicyResource]):
    from secstack.gatekeeper import Constraint

    return [Constraint.from_manifest(dict(r.props)) for r in resources if r.resource_type.startswith(CONSTRAINT_PREFIX)]


def kubernetes_objects(resources: Iterable[PolicyResource]) -> list[PolicyResource]:
    return [
        r
        for r in resources
        if r.resource_type.startswith("kubernetes:") and not r.resource_type.startswith(SKIPPED_PREFIXES) and r.props.get("kind")
    ]


def _validator(action: str):
    def validate(args: StackValidationArgs, report) -> None:
        from secstack.gatekeeper import Engine

        selected = [c for c in constraints(args.resources) if c.enforcement_action == action]
        if not selected:
            return
        engine = Engine()
        for resource in kubernetes_objects(args.resources):
            for v in engine.evaluate(_plain(resource.props), selected):
                report(f"{v.kind}/{v.constraint}: {v.object_kind} {v.namespace or '-'}/{v.name}: {v.message}", resource.urn)

    return validate


def _plain(value):
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def policies():
    return [stack_policy(DENY, _validator("deny")), stack_policy(WARN, _validator("warn"))]
