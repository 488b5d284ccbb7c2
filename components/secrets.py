"""Secrets: Secrets Manager entries encrypted with the secrets key, delivered into the consuming namespaces by
ack-secret-manager, which authenticates with RRSA (a SecretStore per namespace, an ExternalSecret per entry)."""
from __future__ import annotations

import json
from typing import Any, NotRequired, Optional, TypedDict

import pulumi
import pulumi_alicloud as alicloud
import pulumi_kubernetes as k8s

from components.charts import ACK_SECRET_MANAGER
from components.common import child, custom_resource, helm_release, meta
from components.identity import access_statements, rrsa_role, trust_policy

NAMESPACE = "secrets-system"
CONTROLLER_SERVICE_ACCOUNT = "ack-secret-manager"
# Where the chart (rrsa.enable) projects the controller's token, audience sts.aliyuncs.com.
TOKEN_FILE = "/var/run/secrets/tokens/ack-secret-manager"
STORE_NAME = "secstack-kms"
API = "alibabacloud.com/v1alpha1"


class SecretEntryArgs(TypedDict):
    name: str  # Kubernetes Secret name
    secret_name: str  # Secrets Manager name
    data: pulumi.Input[str]  # always a pulumi secret Output
    type: str
    description: str
    version_id: str
    consumers: list[list[str]]  # [namespace, serviceAccount] pairs (tuples from stacks/args.py work the same)
    secret_key: str
    extended_config: NotRequired[Optional[dict[str, Any]]]
    rotation_interval_days: NotRequired[Optional[int]]


class SecretsArgs(TypedDict):
    environment: str
    region: str
    protect: bool
    recovery_window_in_days: int
    polling_interval_seconds: int
    secrets_key_id: pulumi.Input[str]
    secrets_key_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    controller_role_name: str
    entries: list[SecretEntryArgs]
    tags: dict[str, str]
    dkms_instance_id: NotRequired[Optional[str]]


class Secrets(pulumi.ComponentResource):
    """Secrets Manager entries encrypted with the secrets key, delivered into the consuming namespaces by ack-secret-manager, which authenticates with RRSA (a SecretStore per namespace, an ExternalSecret per entry)."""

    secret_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: SecretsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:secrets:Secrets", name, None, opts)
        keep = {"protect": True, "retain_on_delete": True} if args["protect"] else {}
        self.secrets: dict[str, alicloud.kms.Secret] = {}
        for entry in args["entries"]:
            self.secrets[entry["name"]] = self._secret(entry, args, keep)
        self.secret_arns = {n: s.arn for n, s in self.secrets.items()}
        if args["entries"]:
            self._delivery(args)
        self.register_outputs({"secretArns": self.secret_arns})

    def _secret(self, entry: SecretEntryArgs, args: SecretsArgs, keep: dict) -> alicloud.kms.Secret:
        rotation = entry.get("rotation_interval_days")
        extended = entry.get("extended_config")
        return alicloud.kms.Secret(
            entry["name"],
            secret_name=entry["secret_name"],
            secret_data=entry["data"],
            secret_data_type="text",
            secret_type=entry["type"],
            description=entry["description"] or f"secstack {args['environment']} {entry['name']}",
            version_id=entry["version_id"],
            encryption_key_id=args["secrets_key_id"],
            dkms_instance_id=args.get("dkms_instance_id"),
            extended_config=json.dumps(extended, sort_keys=True) if extended else None,
            enable_automatic_rotation=rotation is not None,
            rotation_interval=f"{rotation}d" if rotation is not None else None,
            recovery_window_in_days=args["recovery_window_in_days"],
            force_delete_without_recovery=False,
            tags={**args["tags"], "secret": entry["name"]},
            opts=child(self, **keep),
        )

    def _delivery(self, args: SecretsArgs) -> None:
        namespace = k8s.core.v1.Namespace(
            NAMESPACE,
            # The chart cannot set a container securityContext, so `restricted` would reject the controller.
            metadata=meta(NAMESPACE, labels={"pod-security.kubernetes.io/enforce": "baseline", "secstack.io/system": "true"}),
            opts=child(self),
        )
        # The controller assumes this role with its own projected token: it reads exactly the delivered secrets.
        controller = rrsa_role(
            self,
            "ack-secret-manager",
            args["controller_role_name"],
            f"ack-secret-manager in {NAMESPACE} ({args['environment']}): syncs Secrets Manager entries",
            trust_policy(args["oidc_issuer_url"], args["oidc_provider_arn"], NAMESPACE, CONTROLLER_SERVICE_ACCOUNT),
            access_statements(list(self.secret_arns.values()), [args["secrets_key_arn"]], []),
            args["tags"],
        )
        release = helm_release(
            "ack-secret-manager", ACK_SECRET_MANAGER, NAMESPACE, chart_values(args), child(self, [namespace, controller])
        )
        consumers = sorted({ns for e in args["entries"] for ns, _ in e["consumers"]})
        for ns in consumers:
            custom_resource(
                f"{ns}-secret-store",
                API,
                "SecretStore",
                meta(STORE_NAME, ns),
                {
                    "KMS": {
                        "KMSAuth": {
                            "oidcProviderARN": args["oidc_provider_arn"],
                            "ramRoleARN": controller.arn,
                            "oidcTokenFilePath": TOKEN_FILE,
                            "ramRoleSessionName": f"secstack-{ns}",
                            "roleSessionExpiration": "3600",
                        }
                    }
                },
                child(self, [release]),
            )
        for entry in args["entries"]:
            for ns in sorted({ns for ns, _ in entry["consumers"]}):
                custom_resource(
                    f"{ns}-{entry['name']}-external-secret",
                    API,
                    "ExternalSecret",
                    meta(entry["name"], ns),
                    {
                        "data": [
                            {
                                "key": entry["secret_name"],
                                "name": entry["secret_key"],
                                # The stage follows rotation; a fixed versionId would freeze the first value.
                                "versionStage": "ACSCurrent",
                                "secretStoreRef": {"name": STORE_NAME, "namespace": ns},
                            }
                        ]
                    },
                    child(self, [release, self.secrets[entry["name"]]]),
                )


def chart_values(args: SecretsArgs) -> dict:
    return {
        "rrsa": {"enable": True},
        "serviceAccount": {"create": True, "name": CONTROLLER_SERVICE_ACCOUNT},
        "command": {
            "region": args["region"],
            "pollingInterval": f"{args['polling_interval_seconds']}s",
            "disablePolling": False,
        },
        "replicaCount": 2,
        "image": {"pullPolicy": "IfNotPresent"},
        # Upstream runs as root by default; the controller needs only network and its token file.
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534, "fsGroup": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
    }
