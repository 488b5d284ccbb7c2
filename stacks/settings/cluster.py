"""The ACK cluster the stack deploys into."""
from __future__ import annotations

from pydantic import Field

from .base import Model


class ClusterSettings(Model):
    name: str = Field(min_length=1)
    region: str = Field(default="cn-hangzhou", pattern=r"^[a-z]{2}-[a-z0-9-]+$")
    kubernetes_version: str = Field(default="1.35", pattern=r"^1\.\d+$")
    mesh_system_namespaces: list[str] = Field(
        default_factory=lambda: ["kube-system", "kube-public", "kube-node-lease", "istio-system"]
    )
