"""Every policy of the pack, with its metadata (the README table and SARIF rules are generated from this)."""
from __future__ import annotations

from policies.crossguard import alicloud, kubernetes, stack
from policies.crossguard.base import Meta

MODULES = (kubernetes, alicloud, stack)


def all_policies() -> list:
    return [policy for module in MODULES for policy in module.policies()]


def all_meta() -> dict[str, Meta]:
    metas = [kubernetes.DENY, kubernetes.WARN]
    metas += [meta for meta, _ in alicloud.POLICIES]
    metas += [stack.ISOLATION, stack.MTLS_STRICT, stack.CHART_PINNED, stack.GATEKEEPER_DENY_IN_PROD, stack.NO_EXPIRED_EXEMPTIONS]
    return {m.name: m for m in metas}
