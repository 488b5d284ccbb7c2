"""RrsaIdentities: RAM roles for Kubernetes ServiceAccounts (RRSA). Each role trusts exactly one ServiceAccount of
the cluster's OIDC provider and may read exactly its secrets and use exactly its keys; no AccessKey is involved."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Optional, TypedDict

import pulumi
import pulumi_alicloud as alicloud

from components.common import child

OIDC_AUDIENCE = "sts.aliyuncs.com"
# ack-pod-identity-webhook: the role annotation on the ServiceAccount, the injection label on its namespace.
ROLE_NAME_ANNOTATION = "pod-identity.alibabacloud.com/role-name"
INJECTION_LABEL = "pod-identity.alibabacloud.com/injection"
ROLE_NAME_MAX = 64


class RrsaBindingArgs(TypedDict):
    namespace: str
    service_account: str
    role_name: str
    secret_arns: list[pulumi.Input[str]]  # kms:GetSecretValue
    decrypt_key_arns: list[pulumi.Input[str]]  # kms:Decrypt (keys encrypting its secrets)
    data_key_arns: list[pulumi.Input[str]]  # kms:Decrypt + kms:GenerateDataKey (envelope encryption)


class RrsaIdentitiesArgs(TypedDict):
    environment: str
    oidc_issuer_url: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    bindings: list[RrsaBindingArgs]
    tags: dict[str, str]


def role_name(environment: str, namespace: str, service_account: str) -> str:
    name = f"secstack-{environment}-{namespace}-{service_account}"
    if len(name) <= ROLE_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: ROLE_NAME_MAX - 9]}-{digest}"


def subject(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


def trust_policy(issuer_url: pulumi.Input[str], provider_arn: pulumi.Input[str], namespace: str, service_account: str) -> pulumi.Output[str]:
    """Only tokens of this ServiceAccount, issued by this cluster for STS, may assume the role."""
    document = {
        "Version": "1",
        "Statement": [
            {
                "Action": "sts:AssumeRole",
                "Effect": "Allow",
                "Principal": {"Federated": [provider_arn]},
                "Condition": {
                    "StringEquals": {
                        "oidc:iss": issuer_url,
                        "oidc:aud": OIDC_AUDIENCE,
                        "oidc:sub": subject(namespace, service_account),
                    }
                },
            }
        ],
    }
    return pulumi.Output.from_input(document).apply(lambda d: json.dumps(d, sort_keys=True))


def access_statements(
    secret_arns: list[pulumi.Input[str]], decrypt_key_arns: list[pulumi.Input[str]], data_key_arns: list[pulumi.Input[str]]
) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    if secret_arns:
        statements.append({"Effect": "Allow", "Action": ["kms:GetSecretValue"], "Resource": list(secret_arns)})
    if decrypt_key_arns:
        statements.append({"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": list(decrypt_key_arns)})
    if data_key_arns:
        statements.append({"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": list(data_key_arns)})
    return statements


def policy_document(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    def render(resolved: list[dict[str, Any]]) -> str:
        for statement in resolved:
            statement["Resource"] = sorted(set(statement["Resource"]))
        return json.dumps({"Version": "1", "Statement": resolved}, sort_keys=True)

    return pulumi.Output.from_input(statements).apply(render)


def rrsa_role(
    parent: pulumi.Resource,
    resource_name: str,
    name: str,
    description: str,
    trust: pulumi.Output[str],
    statements: list[dict[str, Any]],
    tags: dict[str, str],
) -> alicloud.ram.Role:
    """A RAM role, its least-privilege custom policy and the attachment (shared with the Secrets component)."""
    role = alicloud.ram.Role(
        resource_name,
        role_name=name,
        description=description,
        assume_role_policy_document=trust,
        max_session_duration=3600,
        tags=tags,
        opts=child(parent),
    )
    if statements:
        policy = alicloud.ram.Policy(
            resource_name,
            policy_name=name,
            description=f"least privilege for {name}",
            policy_document=policy_document(statements),
            rotate_strategy="DeleteOldestNonDefaultVersionWhenLimitExceeded",
            tags=tags,
            opts=child(parent),
        )
        alicloud.ram.RolePolicyAttachment(
            resource_name,
            policy_name=policy.policy_name,
            policy_type="Custom",
            role_name=role.role_name,
            opts=child(parent, [role, policy]),
        )
    return role


class RrsaIdentities(pulumi.ComponentResource):
    """RAM roles for Kubernetes ServiceAccounts (RRSA). Each role trusts exactly one ServiceAccount of the cluster's OIDC provider and may read exactly its secrets and use exactly its keys; no AccessKey is involved."""

    role_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: RrsaIdentitiesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:identity:RrsaIdentities", name, None, opts)
        self.role_arns = {}
        for binding in args["bindings"]:
            ns, sa = binding["namespace"], binding["service_account"]
            role = rrsa_role(
                self,
                f"{ns}-{sa}",
                binding["role_name"],
                f"RRSA role of ServiceAccount {ns}/{sa} ({args['environment']})",
                trust_policy(args["oidc_issuer_url"], args["oidc_provider_arn"], ns, sa),
                access_statements(binding["secret_arns"], binding["decrypt_key_arns"], binding["data_key_arns"]),
                args["tags"],
            )
            self.role_arns[f"{ns}/{sa}"] = role.arn
        self.register_outputs({"roleArns": self.role_arns})
