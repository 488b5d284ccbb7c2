"""Checks across the data-security sections (kms, secrets, cluster.rrsa) and the teams they serve."""
from __future__ import annotations

from typing import Any

from .kms import DEFAULT_KEY_ROTATION_DAYS
from .secrets import ROTATABLE


def check(settings: Any) -> list[str]:
    problems: list[str] = []
    kms, secrets, cluster = settings.kms, settings.secrets, settings.cluster
    accounts = {f"{ns}/{sa}" for _, _, ns, sa in settings.services()}
    declared = ", ".join(sorted(accounts)) or "none"

    if kms.automatic_rotation and kms.protection_level == "HSM":
        problems.append(
            "secstack:kms.automaticRotation: hardware-protected (HSM) keys do not support automatic rotation; set "
            "it to false and rotate with a new key version (docs/data-security.md), or use protectionLevel SOFTWARE"
        )
    if kms.automatic_rotation and not kms.dkms_instance_id and kms.rotation_interval_days != DEFAULT_KEY_ROTATION_DAYS:
        problems.append(
            f"secstack:kms.rotationIntervalDays: default keys (no secstack:kms.dkmsInstanceId) rotate only every "
            f"{DEFAULT_KEY_ROTATION_DAYS} days, got {kms.rotation_interval_days}; keys in a KMS instance allow 7-365"
        )
    if kms.dkms_instance_id and not kms.account_id:
        problems.append("secstack:kms.accountId: required with secstack:kms.dkmsInstanceId (the key policy names the account)")

    for i, entry in enumerate(secrets.entries):
        key = f"secstack:secrets.entries[{i}]"
        if entry.rotation_interval_days is not None and entry.type not in ROTATABLE:
            problems.append(f"{key}.rotationIntervalDays: Secrets Manager rotates only {', '.join(ROTATABLE)} secrets, not {entry.type}")
        if entry.type in ROTATABLE and not entry.extended_config:
            problems.append(f"{key}.extendedConfig: required for type {entry.type} (e.g. SecretSubType, DBInstanceId)")
        if entry.type == "Rds" and not entry.account_name:
            problems.append(f"{key}.accountName: required for type Rds (the secret value is that account's password)")
        for consumer in entry.consumers:
            if consumer not in accounts:
                problems.append(
                    f"secstack:secrets.entries[{i}].consumers: {consumer!r} is not a declared service account (declared: {declared})"
                )
    for account, purposes in kms.key_users.items():
        if account not in accounts:
            problems.append(f"secstack:kms.keyUsers.{account}: not a declared service account (declared: {declared})")
        for purpose in purposes:
            if purpose not in kms.purposes:
                problems.append(f"secstack:kms.keyUsers.{account}: purpose {purpose!r} has no key (secstack:kms.purposes: {', '.join(kms.purposes)})")

    needs_secrets_key = bool(secrets.entries) or cluster.managed is not None
    if needs_secrets_key and "secrets" not in kms.purposes:
        problems.append("secstack:kms.purposes: must include 'secrets' (Secrets Manager entries and Kubernetes Secrets are encrypted with it)")

    rrsa = cluster.rrsa
    if (secrets.entries or kms.key_users) and not rrsa.enabled:
        problems.append(
            "secstack:cluster.rrsa.enabled: must be true while secrets or key users are declared; RRSA is the only "
            "way they are read without a static AccessKey"
        )
    if rrsa.enabled and cluster.managed is None:
        how = "copy it from the ACK console (Cluster Information > Security and Auditing > RRSA OIDC) or `aliyun cs DescribeClusterDetail`"
        if rrsa.oidc_issuer_url is None:
            problems.append(f"secstack:cluster.rrsa.oidcIssuerUrl: required when RRSA is on for an existing cluster; {how}")
        if rrsa.oidc_provider_arn is None:
            problems.append(f"secstack:cluster.rrsa.oidcProviderArn: required when RRSA is on for an existing cluster; {how}")
    if cluster.managed is not None and (rrsa.oidc_issuer_url or rrsa.oidc_provider_arn):
        problems.append(
            "secstack:cluster.rrsa: oidcIssuerUrl/oidcProviderArn come from the managed cluster (secstack:cluster.managed); remove them"
        )
    return problems
