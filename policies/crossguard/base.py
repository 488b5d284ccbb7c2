"""What every secstack policy declares, and small readers shared by the policy modules."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, Severity, StackValidationPolicy



@dataclass(frozen=True)
class Meta:
    name: str
    severity: Severity
    description: str
    remediation: str
    default_level: EnforcementLevel = EnforcementLevel.MANDATORY


def _policy(cls, meta: Meta, validate: Callable):
    return cls(
        name=meta.name,
        description=meta.description,
        validate=validate,
        enforcement_level=meta.default_level,
        severity=meta.severity,
        remediation_steps=meta.remediation,
        config_schema=ENVIRONMENT_SCHEMA,
    )


def resource_policy(meta: Meta, validate: Callable) -> ResourceValidationPolicy:
    return _policy(ResourceValidationPolicy, meta, validate)


def stack_policy(meta: Meta, validate: Callable) -> StackValidationPolicy:
    return _policy(StackValidationPolicy, meta, validate)


def _schema():
    from pulumi_policy import PolicyConfigSchema

    return PolicyConfigSchema(
        properties={"environment": {"type": "string", "enum": ["dev", "staging", "prod"]}, "today": {"type": "string"}},
    )


ENVIRONMENT_SCHEMA = _schema()


def environment(args: Any) -> Optional[str]:
    return (args.get_config() or {}).get("environment")



def json_document(value: Any) -> Optional[dict]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
