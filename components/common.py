"""Small helpers shared by the components."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.charts import ChartPin

MANAGED_BY = {"app.kubernetes.io/managed-by": "secstack"}


def child(parent: pulumi.Resource, depends_on: Optional[Sequence[pulumi.Resource]] = None, **kwargs: Any):
    return pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on or []), **kwargs)


def meta(name: str, namespace: Optional[str] = None, labels: Optional[Mapping[str, str]] = None, **extra: Any) -> dict:
    out: dict[str, Any] = {"name": name, "labels": {**MANAGED_BY, **(labels or {})}, **extra}
    if namespace:
        out["namespace"] = namespace
    return out


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = deep_merge(out[key], value) if isinstance(out.get(key), Mapping) and isinstance(value, Mapping) else value
    return out


def helm_release(
    name: str,
    pin: ChartPin,
    namespace: str,
    values: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """A pinned, atomic Helm release (a failed upgrade rolls back instead of leaving a half-applied chart)."""
    return k8s.helm.v3.Release(
        name,
        name=name,
        chart=pin.chart,
        version=pin.version,
        repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=pin.repo),
        namespace=namespace,
        create_namespace=False,
        atomic=True,
        cleanup_on_fail=True,
        max_history=10,
        values=dict(values),
        opts=opts,
    )


def custom_resource(
    resource_name: str, api_version: str, kind: str, metadata: dict, spec: Any, opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(resource_name, api_version=api_version, kind=kind, metadata=metadata, spec=spec, opts=opts)
