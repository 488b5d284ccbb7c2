"""ManagedCluster: an optional ACK managed cluster owned by the stack, with RRSA on, Kubernetes Secrets encrypted
at rest with the secrets key and, in prod, deletion protection. Its RRSA issuer feeds the identities."""
from __future__ import annotations

from typing import Optional, TypedDict

import pulumi
import pulumi_alicloud as alicloud

from components.common import child


class ManagedClusterArgs(TypedDict):
    name: str
    environment: str
    kubernetes_version: str
    cluster_spec: str
    vswitch_ids: list[str]
    pod_vswitch_ids: list[str]
    pod_cidr: Optional[str]
    service_cidr: str
    api_server_public: bool
    enable_rrsa: bool
    secrets_key_id: pulumi.Input[str]
    protect: bool
    tags: dict[str, str]


class ManagedCluster(pulumi.ComponentResource):
    """An optional ACK managed cluster owned by the stack, with RRSA on, Kubernetes Secrets encrypted at rest with the secrets key and, in prod, deletion protection. Its RRSA issuer feeds the identities."""

    oidc_issuer_url: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ManagedClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:cluster:ManagedCluster", name, None, opts)
        keep = {"protect": True, "retain_on_delete": True} if args["protect"] else {}
        cluster = alicloud.cs.ManagedKubernetes(
            name,
            name=args["name"],
            cluster_spec=args["cluster_spec"],
            version=args["kubernetes_version"],
            vswitch_ids=args["vswitch_ids"],
            pod_vswitch_ids=args["pod_vswitch_ids"] or None,
            pod_cidr=args["pod_cidr"],
            service_cidr=args["service_cidr"],
            slb_internet_enabled=args["api_server_public"],
            enable_rrsa=args["enable_rrsa"],
            # Secrets in etcd are encrypted with the KMS secrets key (both fields are needed, see provider docs).
            encryption_provider_key=args["secrets_key_id"],
            disable_encryption=False,
            deletion_protection=args["protect"],
            # The RRSA webhook injects the role and token into pods of annotated ServiceAccounts.
            addons=[alicloud.cs.ManagedKubernetesAddonArgs(name="ack-pod-identity-webhook")] if args["enable_rrsa"] else None,
            tags=args["tags"],
            opts=child(self, **keep),
        )
        self.cluster = cluster
        metadata = cluster.rrsa_metadata
        self.oidc_issuer_url = metadata.apply(lambda m: m.rrsa_oidc_issuer_url if m else "")
        self.oidc_provider_arn = metadata.apply(lambda m: m.ram_oidc_provider_arn if m else "")
        self.register_outputs({"clusterId": cluster.id, "oidcIssuerUrl": self.oidc_issuer_url})
