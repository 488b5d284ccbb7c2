"""DataSecurity: keys, then (optionally) the managed cluster, Secrets Manager entries with their delivery, and the
RRSA identities of the consuming ServiceAccounts, wired together (key ids, secret ARNs, the cluster's issuer)."""
from __future__ import annotations

from typing import Any, NotRequired, Optional, TypedDict

import pulumi

from components.cluster import ManagedCluster, ManagedClusterArgs
from components.identity import RrsaBindingArgs, RrsaIdentities
from components.kms import KmsKeyring, KmsKeyringArgs
from components.secrets import SecretEntryArgs, Secrets


class ConsumerArgs(TypedDict):
    namespace: str
    service_account: str
    role_name: str
    secrets: list[str]  # entry names it reads
    key_purposes: list[str]  # keys it may Decrypt/GenerateDataKey with


class SecretDeliveryArgs(TypedDict):
    recovery_window_in_days: int
    polling_interval_seconds: int
    controller_role_name: str
    entries: list[SecretEntryArgs]


class DataSecurityArgs(TypedDict):
    environment: str
    region: str
    protect: bool
    tags: dict[str, str]
    kms: KmsKeyringArgs
    secrets: SecretDeliveryArgs
    consumers: list[ConsumerArgs]
    oidc_issuer_url: NotRequired[Optional[str]]  # existing cluster
    oidc_provider_arn: NotRequired[Optional[str]]
    managed_cluster: NotRequired[Optional[dict[str, Any]]]  # ManagedClusterArgs without secrets_key_id


class DataSecurity(pulumi.ComponentResource):
    """Keys, then (optionally) the managed cluster, Secrets Manager entries with their delivery, and the RRSA identities of the consuming ServiceAccounts, wired together (key ids, secret ARNs, the cluster's issuer)."""

    aliases: dict[str, str]  # purpose -> KMS alias
    role_arns: dict[str, pulumi.Output[str]]  # "namespace/serviceAccount" -> RAM role ARN

    def __init__(self, name: str, args: DataSecurityArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:data:DataSecurity", name, None, opts)
        here = pulumi.ResourceOptions(parent=self)
        self.keyring = KmsKeyring("keys", args["kms"], here)
        issuer: pulumi.Input[str] = args.get("oidc_issuer_url") or ""
        provider: pulumi.Input[str] = args.get("oidc_provider_arn") or ""
        self.cluster = None
        if args.get("managed_cluster"):
            cluster_args: ManagedClusterArgs = {**args["managed_cluster"], "secrets_key_id": self.keyring.key_ids["secrets"]}  # type: ignore[typeddict-item]
            self.cluster = ManagedCluster("cluster", cluster_args, pulumi.ResourceOptions(parent=self, depends_on=[self.keyring]))
            issuer, provider = self.cluster.oidc_issuer_url, self.cluster.oidc_provider_arn

        delivery = args["secrets"]
        self.secrets = None
        if delivery["entries"]:
            self.secrets = Secrets(
                "secrets",
                {
                    "environment": args["environment"],
                    "region": args["region"],
                    "protect": args["protect"],
                    "recovery_window_in_days": delivery["recovery_window_in_days"],
                    "polling_interval_seconds": delivery["polling_interval_seconds"],
                    "secrets_key_id": self.keyring.key_ids["secrets"],
                    "secrets_key_arn": self.keyring.key_arns["secrets"],
                    "oidc_issuer_url": issuer,
                    "oidc_provider_arn": provider,
                    "controller_role_name": delivery["controller_role_name"],
                    "entries": delivery["entries"],
                    "tags": args["tags"],
                    "dkms_instance_id": args["kms"].get("dkms_instance_id"),
                },
                pulumi.ResourceOptions(parent=self, depends_on=[self.keyring]),
            )
        secret_arns = self.secrets.secret_arns if self.secrets else {}
        bindings: list[RrsaBindingArgs] = []
        for consumer in args["consumers"]:
            bindings.append(
                {
                    "namespace": consumer["namespace"],
                    "service_account": consumer["service_account"],
                    "role_name": consumer["role_name"],
                    "secret_arns": [secret_arns[s] for s in consumer["secrets"]],
                    # Reading a secret encrypted with a customer key also needs kms:Decrypt on that key.
                    "decrypt_key_arns": [self.keyring.key_arns["secrets"]] if consumer["secrets"] else [],
                    "data_key_arns": [self.keyring.key_arns[p] for p in consumer["key_purposes"]],
                }
            )
        self.identities = RrsaIdentities(
            "identities",
            {
                "environment": args["environment"],
                "oidc_issuer_url": issuer,
                "oidc_provider_arn": provider,
                "bindings": bindings,
                "tags": args["tags"],
            },
            pulumi.ResourceOptions(parent=self, depends_on=[c for c in (self.keyring, self.secrets) if c is not None]),
        )
        self.aliases, self.role_arns = self.keyring.aliases, self.identities.role_arns
        self.register_outputs({"aliases": self.aliases, "roleArns": self.role_arns})
