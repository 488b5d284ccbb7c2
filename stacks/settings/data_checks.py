"""Checks across the data-security sections (kms, secrets, cluster.rrsa) and the teams they serve."""
from __future__ import annotations

from typing import Any


def check(settings: Any) -> list[str]:
    problems: list[str] = []
    kms, secrets, cluster = settings.kms, settings.secrets, settings.cluster
    accounts = {f"{ns}/{sa}" for _, _, ns, sa in settings.services()}
    declared = ", ".join(sorted(accounts)) or "none"

    for i, entry in enumerate(secrets.entries):
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
