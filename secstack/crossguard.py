"""Run the CrossGuard pack offline over a preview's captured resources, with pulumi-policy's own argument types
and the same per-stack config file `pulumi preview --policy-pack-config` takes."""
from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Optional

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from secstack.verdicts import ADVISORY, MANDATORY, Verdict

CONFIG_DIR = Path(__file__).resolve().parent.parent / "policies" / "crossguard" / "config"
# `secstack preview` reports these evaluations per rule (gatekeeper/<Kind>) through secstack/checks/admission.py:
# same engine, same constraints; tests/policies/test_one_source.py asserts that both give the same violations.
REPORTED_PER_RULE = {"gatekeeper-deny", "gatekeeper-warn"}


class PolicyConfigError(Exception):
    pass


def config_path(stack: str, environment: str) -> Path:
    for name in (stack, environment):
        path = CONFIG_DIR / f"{name}.json"
        if path.exists():
            return path
    raise PolicyConfigError(f"no policy config for stack {stack!r}: create {CONFIG_DIR / (stack + '.json')}")


def load_config(stack: str, environment: str) -> dict[str, Any]:
    path = config_path(stack, environment)
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PolicyConfigError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise PolicyConfigError(f"{path}: expected an object of policy name -> level or settings")
    return config


def level_and_config(policy, config: dict[str, Any]) -> tuple[EnforcementLevel, dict[str, Any]]:
    entry = config.get(policy.name, config.get("all"))
    settings: dict[str, Any] = {}
    if isinstance(entry, str):
        level = EnforcementLevel(entry)
    elif isinstance(entry, dict):
        settings = {k: v for k, v in entry.items() if k != "enforcementLevel"}
        level = EnforcementLevel(entry.get("enforcementLevel", (policy.enforcement_level or EnforcementLevel.ADVISORY).value))
    else:
        level = policy.enforcement_level or EnforcementLevel.ADVISORY
    return level, settings


def _options(r) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=bool(r.options.get("protect")),
        ignore_changes=list(r.options.get("ignoreChanges") or []),
        delete_before_replace=r.options.get("deleteBeforeReplace"),
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=list(r.options.get("additionalSecretOutputs") or []),
        parent=r.parent or None,
    )


def _wait(result: Any) -> None:
    if inspect.isawaitable(result):
        import asyncio

        asyncio.run(_as_coroutine(result))


async def _as_coroutine(awaitable):
    return await awaitable


def _policy_resources(preview) -> list[PolicyResource]:
    """The engine hands analyzers plain values (secrets unwrapped); so does this runner."""
    return [PolicyResource(r.type, r.plain_inputs(), r.urn, r.name, _options(r), None, None, [], {}) for r in preview.resources if r.custom]


def evaluate(preview, policies: Optional[list] = None, config: Optional[dict] = None) -> list[Verdict]:
    from policies.crossguard.catalog import all_meta, all_policies
    from secstack.preview import manifest_filename

    policies = policies if policies is not None else [p for p in all_policies() if p.name not in REPORTED_PER_RULE]
    config = config if config is not None else load_config(preview.stack, preview.settings.environment)
    meta = all_meta()
    files = {r.urn: f"manifests/{manifest_filename(obj)}" for r, obj in preview.kubernetes_objects()}
    custom = [r for r in preview.resources if r.custom]
    resources = _policy_resources(preview)
    verdicts: list[Verdict] = []
    for policy in policies:
        level, settings = level_and_config(policy, config)
        if level == EnforcementLevel.DISABLED:
            continue
        info = meta.get(policy.name)

        def report(message: str, urn: Optional[str] = None, _policy=policy, _level=level, _info=info, _default=None):
            urn = urn or _default
            verdicts.append(
                Verdict(
                    policy=f"crossguard/{_policy.name}",
                    level=MANDATORY if _level == EnforcementLevel.MANDATORY else ADVISORY,
                    severity=(_policy.severity.value if _policy.severity else "medium"),
                    message=message,
                    resource=urn or f"stack:{preview.stack}",
                    resource_type=next((r.resource_type for r in resources if r.urn == urn), ""),
                    description=_policy.description,
                    remediation=_policy.remediation_steps or "",
                    file=files.get(urn),
                )
            )

        if isinstance(policy, ResourceValidationPolicy):
            for r, resource in zip(custom, resources):
                args = ResourceValidationArgs(resource.resource_type, resource.props, resource.urn, resource.name, resource.opts, None, settings)
                _wait(policy.validate(args, lambda message, urn=None, _u=r.urn: report(message, urn or _u)))
        else:
            _wait(policy.validate(StackValidationArgs(resources, settings), report))
    return verdicts
