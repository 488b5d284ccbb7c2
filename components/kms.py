"""KmsKeyring: one symmetric customer master key per purpose, rotated automatically, with an alias
`alias/secstack/<env>/<purpose>`; in prod the keys and aliases cannot be deleted by `pulumi destroy`."""
from __future__ import annotations

import json
from typing import NotRequired, Optional, TypedDict

import pulumi
import pulumi_alicloud as alicloud

from components.common import child


class KmsKeyringArgs(TypedDict):
    environment: str
    purposes: list[str]
    key_spec: str
    automatic_rotation: bool
    rotation_interval_days: int
    pending_window_in_days: int
    deletion_protection: bool
    protect: bool  # protect=True and retain_on_delete=True on keys and aliases
    tags: dict[str, str]
    dkms_instance_id: NotRequired[Optional[str]]
    protection_level: NotRequired[str]
    account_id: NotRequired[Optional[str]]


def alias_name(environment: str, purpose: str) -> str:
    return f"alias/secstack/{environment}/{purpose}"


def key_policy(account_id: str) -> str:
    """The policy of a key in a KMS instance: the account keeps control, RAM policies decide who uses the key
    (the per-ServiceAccount RAM policies in components/identity.py). Without it no RAM policy could grant use."""
    return json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Sid": "AccountControlsTheKeyThroughRam",
                    "Effect": "Allow",
                    "Principal": {"RAM": [f"acs:ram::{account_id}:*"]},
                    "Action": ["kms:*"],
                    "Resource": ["*"],
                }
            ],
        },
        sort_keys=True,
    )


class KmsKeyring(pulumi.ComponentResource):
    """One symmetric customer master key per purpose, rotated automatically, with an alias `alias/secstack/<env>/<purpose>`; in prod the keys and aliases cannot be deleted by `pulumi destroy`."""

    key_ids: dict[str, pulumi.Output[str]]
    key_arns: dict[str, pulumi.Output[str]]
    aliases: dict[str, str]

    def __init__(self, name: str, args: KmsKeyringArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:kms:KmsKeyring", name, None, opts)
        env = args["environment"]
        keep = {"protect": True, "retain_on_delete": True} if args["protect"] else {}
        dkms = args.get("dkms_instance_id")
        self.keys: dict[str, alicloud.kms.Key] = {}
        self.aliases = {}
        for purpose in args["purposes"]:
            key = alicloud.kms.Key(
                f"{purpose}-key",
                description=f"secstack {env} {purpose} key",
                key_spec=args["key_spec"],
                key_usage="ENCRYPT/DECRYPT",
                origin="Aliyun_KMS",
                protection_level=args.get("protection_level", "SOFTWARE"),
                automatic_rotation="Enabled" if args["automatic_rotation"] else "Disabled",
                rotation_interval=f"{args['rotation_interval_days']}d" if args["automatic_rotation"] else None,
                pending_window_in_days=args["pending_window_in_days"],
                deletion_protection="Enabled" if args["deletion_protection"] else "Disabled",
                deletion_protection_description=(
                    f"secstack {env} {purpose} key: disable deletion protection deliberately before deleting"
                    if args["deletion_protection"] else None
                ),
                dkms_instance_id=dkms,
                # Key policies take effect only on keys in a KMS instance.
                policy=key_policy(args["account_id"]) if dkms and args.get("account_id") else None,
                status="Enabled",
                tags={**args["tags"], "purpose": purpose},
                opts=child(self, **keep),
            )
            alias = alias_name(env, purpose)
            alicloud.kms.Alias(f"{purpose}-alias", alias_name=alias, key_id=key.id, opts=child(self, [key], **keep))
            self.keys[purpose] = key
            self.aliases[purpose] = alias
        self.key_ids = {p: k.id for p, k in self.keys.items()}
        self.key_arns = {p: k.arn for p, k in self.keys.items()}
        self.register_outputs({"keyIds": self.key_ids, "aliases": self.aliases})
