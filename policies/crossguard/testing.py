"""Helpers for policy authors: build a resource, run one policy on it, assert a violation (or none).

    from policies.crossguard.testing import resource, assert_violation, assert_no_violation
    key = resource("alicloud:kms/key:Key", {"automaticRotation": "Disabled", "pendingWindowInDays": 30})
    assert_violation("kms-key-rotation", key, "automatic rotation is Disabled")
"""
from __future__ import annotations

from typing import Any, Iterable, Optional, Union

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from policies.crossguard.catalog import all_policies

Resources = Union[PolicyResource, Iterable[PolicyResource]]


def resource(
    type_: str,
    props: dict[str, Any],
    name: str = "r",
    protect: bool = False,
    additional_secret_outputs: Iterable[str] = (),
    urn: Optional[str] = None,
) -> PolicyResource:
    opts = PolicyResourceOptions(protect, [], False, [], PolicyCustomTimeouts(0, 0, 0), list(additional_secret_outputs))
    return PolicyResource(type_, props, urn or f"urn:pulumi:test::secstack::{type_}::{name}", name, opts, None, None, [], {})


def k8s(kind: str, name: str, namespace: Optional[str] = None, api_version: str = "v1", type_: Optional[str] = None, **body: Any) -> PolicyResource:
    group, _, version = api_version.rpartition("/")
    token = type_ or f"kubernetes:{group or 'core'}/{version}:{kind}"
    metadata: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    metadata.update(body.pop("metadata", {}))
    return resource(token, {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}, name=f"{namespace or ''}-{name}")


def policy(name: str):
    for p in all_policies():
        if p.name == name:
            return p
    raise KeyError(f"no policy named {name!r}")


def violations(name: str, resources: Resources, config: Optional[dict] = None) -> list[str]:
    items = [resources] if isinstance(resources, PolicyResource) else list(resources)
    found: list[str] = []
    p = policy(name)
    if isinstance(p, ResourceValidationPolicy):
        for r in items:
            p.validate(
                ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, None, config or {}),
                lambda message, urn=None: found.append(message),
            )
    else:
        p.validate(StackValidationArgs(items, config or {}), lambda message, urn=None: found.append(message))
    return found


def assert_violation(name: str, resources: Resources, message: str, config: Optional[dict] = None) -> None:
    found = violations(name, resources, config)
    assert any(message in m for m in found), f"{name}: expected a violation containing {message!r}, got {found}"


def assert_no_violation(name: str, resources: Resources, config: Optional[dict] = None) -> None:
    found = violations(name, resources, config)
    assert not found, f"{name}: expected no violation, got {found}"
