"""The ACK cluster the stack deploys into: an existing cluster (its RRSA OIDC issuer from settings) or one the
stack manages (RRSA, Secret encryption with the secrets key and deletion protection set by the stack)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, HttpUrl, field_validator

from .base import Model

OIDC_PROVIDER_ARN = r"^acs:ram::\d{16}:oidc-provider/[A-Za-z0-9._-]+$"


class RrsaSettings(Model):
    """RAM Roles for Service Accounts. For an existing cluster copy both values from the console (Cluster
    Information > Basic Information > RRSA OIDC) or `aliyun cs DescribeClusterDetail --ClusterId <id>`."""

    enabled: bool = True
    oidc_issuer_url: Optional[HttpUrl] = None
    oidc_provider_arn: Optional[str] = Field(default=None, pattern=OIDC_PROVIDER_ARN)

    @field_validator("oidc_issuer_url")
    @classmethod
    def _https(cls, value: Optional[HttpUrl]) -> Optional[HttpUrl]:
        if value is not None and value.scheme != "https":
            raise ValueError("must be an https:// URL (the issuer STS trusts)")
        return value


class ManagedClusterSettings(Model):
    """An ACK managed cluster created by the stack."""

    cluster_spec: Literal["ack.standard", "ack.pro.small"] = "ack.pro.small"
    vswitch_ids: list[str] = Field(min_length=1)
    pod_vswitch_ids: list[str] = Field(default_factory=list, description="Terway; empty means Flannel with podCidr")
    pod_cidr: Optional[str] = None
    service_cidr: str = "172.21.0.0/20"
    api_server_public: bool = False


class ClusterSettings(Model):
    name: str = Field(min_length=1)
    region: str = Field(default="cn-hangzhou", pattern=r"^[a-z]{2}-[a-z0-9-]+$")
    kubernetes_version: str = Field(default="1.35", pattern=r"^1\.\d+$")
    mesh_system_namespaces: list[str] = Field(
        default_factory=lambda: ["kube-system", "kube-public", "kube-node-lease", "istio-system"]
    )
    rrsa: RrsaSettings = RrsaSettings()
    managed: Optional[ManagedClusterSettings] = None
