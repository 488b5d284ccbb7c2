"""Entry point the Pulumi CLI runs: `pulumi preview --policy-pack policies/crossguard`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policies.crossguard.catalog import all_policies  # noqa: E402

PolicyPack(
    name="secstack",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=all_policies(),
    description="secstack: Gatekeeper Rego at preview, Alibaba Cloud data security, stack posture",
)
