"""Alibaba Cloud data-security policies: KMS keys, Secrets Manager entries, RAM policies, RRSA trust."""
from __future__ import annotations

from pulumi_policy import ResourceValidationArgs, Severity

from policies.crossguard.base import Meta, as_list, environment, json_document, resource_policy

KEY, ALIAS, SECRET = "alicloud:kms/key:Key", "alicloud:kms/alias:Alias", "alicloud:kms/secret:Secret"
RAM_POLICY, RAM_ROLE = "alicloud:ram/policy:Policy", "alicloud:ram/role:Role"
MIN_PENDING_WINDOW_DAYS = 7

KEY_ROTATION = Meta(
    "kms-key-rotation",
    Severity.HIGH,
    "KMS keys rotate automatically and keep a pending-deletion window of at least 7 days.",
    "Set automatic_rotation='Enabled' with a rotation_interval, and pending_window_in_days >= 7 (prod: 30).",
)
DATA_PROTECTED = Meta(
    "kms-protected-in-prod",
    Severity.HIGH,
    "In prod, KMS keys, aliases and Secrets Manager entries are protected from `pulumi destroy`.",
    "Declare them with ResourceOptions(protect=True, retain_on_delete=True) in prod.",
)
SECRET_CUSTOMER_KEY = Meta(
    "kms-secret-customer-key",
    Severity.HIGH,
    "Every Secrets Manager entry is encrypted with a customer key and its value is a Pulumi secret.",
    "Pass encryption_key_id=<the secrets key> and a secret (pulumi.Output.secret) secret_data.",
)
RAM_NO_WILDCARDS = Meta(
    "ram-no-wildcards",
    Severity.CRITICAL,
    "RAM policies name exact actions and resources: no `*`.",
    "List each action (e.g. kms:GetSecretValue) and each resource ARN the principal needs.",
)
RRSA_TRUST_PINNED = Meta(
    "rrsa-trust-pinned",
    Severity.CRITICAL,
    "RRSA role trust policies pin the service account (oidc:sub) and audience (oidc:aud).",
    "Add Condition.StringEquals oidc:sub = system:serviceaccount:<ns>:<sa> and oidc:aud = sts.aliyuncs.com.",
)


def validate_key_rotation(args: ResourceValidationArgs, report) -> None:
    if args.resource_type != KEY:
        return
    props = args.props
    if props.get("automaticRotation") != "Enabled":
        report(f"KMS key {args.name}: automatic rotation is {props.get('automaticRotation') or 'not set'} (must be Enabled)")
    elif not props.get("rotationInterval"):
        report(f"KMS key {args.name}: automatic rotation has no rotation_interval")
    window = props.get("pendingWindowInDays")
    if window is None or int(window) < MIN_PENDING_WINDOW_DAYS:
        report(f"KMS key {args.name}: pending window {window or 'not set'} days is below {MIN_PENDING_WINDOW_DAYS}")


def validate_protected(args: ResourceValidationArgs, report) -> None:
    if args.resource_type in (KEY, ALIAS, SECRET) and environment(args) == "prod" and not args.opts.protect:
        report(f"{args.resource_type.split(':')[-1]} {args.name} is not protected in prod")


def validate_secret(args: ResourceValidationArgs, report) -> None:
    if args.resource_type != SECRET:
        return
    if not args.props.get("encryptionKeyId"):
        report(f"secret {args.name}: no encryption_key_id (the default service key is shared by the account)")
    if "secretData" not in (args.opts.additional_secret_outputs or []):
        report(f"secret {args.name}: secret_data is not marked secret")


def _statements(document: dict) -> list[dict]:
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


def validate_ram_wildcards(args: ResourceValidationArgs, report) -> None:
    if args.resource_type != RAM_POLICY:
        return
    document = json_document(args.props.get("policyDocument") or args.props.get("document"))
    if document is None:
        report(f"RAM policy {args.name}: policy document is not valid JSON")
        return
    for statement in _statements(document):
        for action in as_list(statement.get("Action")):
            if "*" in str(action):
                report(f"RAM policy {args.name}: wildcard action {action!r}")
        for resource in as_list(statement.get("Resource")):
            if str(resource) == "*" or str(resource).endswith((":*", "/*")):
                report(f"RAM policy {args.name}: wildcard resource {resource!r}")


def validate_rrsa_trust(args: ResourceValidationArgs, report) -> None:
    if args.resource_type != RAM_ROLE:
        return
    document = json_document(args.props.get("assumeRolePolicyDocument") or args.props.get("document"))
    if document is None:
        return
    for statement in _statements(document):
        principal = statement.get("Principal") or {}
        if not isinstance(principal, dict) or "Federated" not in principal:
            continue
        equals = (statement.get("Condition") or {}).get("StringEquals") or {}
        sub = str(equals.get("oidc:sub") or "")
        if not sub.startswith("system:serviceaccount:") or "*" in sub or sub.count(":") != 3:
            report(f"RAM role {args.name}: trust policy does not pin oidc:sub to one service account (got {sub or 'none'})")
        if equals.get("oidc:aud") != "sts.aliyuncs.com":
            report(f"RAM role {args.name}: trust policy does not pin oidc:aud to sts.aliyuncs.com")


POLICIES = [
    (KEY_ROTATION, validate_key_rotation),
    (DATA_PROTECTED, validate_protected),
    (SECRET_CUSTOMER_KEY, validate_secret),
    (RAM_NO_WILDCARDS, validate_ram_wildcards),
    (RRSA_TRUST_PINNED, validate_rrsa_trust),
]


def policies():
    return [resource_policy(meta, fn) for meta, fn in POLICIES]
