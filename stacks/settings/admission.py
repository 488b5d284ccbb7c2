"""Admission settings: which Gatekeeper rules run per environment, how hard they bite, and the written exemptions.

Rule kinds and their parameters are checked against the ConstraintTemplates in `policies/gatekeeper/` (through
`secstack.gatekeeper.load_rules`), so a typo in a kind or a parameter fails `secstack preview` with exit 2 before
anything is declared.
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import Any, Literal, Optional

import jsonschema
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from .base import Guard, Model, rank_weaker, turned_off

EnforcementAction = Literal["dryrun", "warn", "deny"]
ACTION_ORDER = ["dryrun", "warn", "deny"]  # weakest first
Bundle = Literal["pss-baseline", "pss-restricted", "general"]
FailurePolicy = Literal["Ignore", "Fail"]
DIGEST_RULE = "K8sImageDigests"

# Never processed by Gatekeeper (Config `processes: ["*"]`, every constraint's excludedNamespaces, and the webhook's
# namespaceSelector): the control plane, Gatekeeper itself, and istio-system, whose istio-cni node agent needs host
# access and whose istiod must start before any sidecar can be injected.
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "gatekeeper-system", "istio-system")

_NAMESPACE_GLOB = re.compile(r"^\*?[a-z0-9]([-a-z0-9]*[a-z0-9])?\*?$|^\*$")


def weaker_action(a: str, b: str) -> str:
    return a if ACTION_ORDER.index(a) < ACTION_ORDER.index(b) else b


def _namespace_globs(values: list[str]) -> list[str]:
    for value in values:
        if value == "*" or not _NAMESPACE_GLOB.match(value):
            raise ValueError(f"{value!r} is not a namespace name or prefix/suffix glob (e.g. team-a, team-*)")
    return values


class RuleOverride(Model):
    """Per-rule override, keyed by constraint kind (e.g. K8sAllowedRepos)."""

    enabled: Optional[bool] = None  # None: on when one of the environment's bundles contains the rule
    enforcement_action: Optional[EnforcementAction] = None  # None: the section's enforcementAction
    parameters: dict[str, Any] = Field(default_factory=dict)


class Exemption(Model):
    """A written waiver of one rule for some namespaces or some images, with a reason and an optional end date."""

    rule: str = Field(min_length=1)
    namespaces: list[str] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)  # gatekeeper-library exemptImages: a trailing * is a prefix match
    reason: str
    expires: Optional[_dt.date] = None  # last day the exemption is valid (YYYY-MM-DD, quoted in YAML)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if len(value.strip()) < 10:
            raise ValueError("must say why the rule cannot apply (at least 10 characters), e.g. the ticket and the owner")
        return value.strip()

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, values: list[str]) -> list[str]:
        return _namespace_globs(values)

    @field_validator("images")
    @classmethod
    def _images(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value or "*" in value[:-1] or value == "*" or any(c.isspace() for c in value):
                raise ValueError(
                    f"{value!r} is not an image or image prefix (only a trailing * is allowed, e.g. docker.io/istio/proxyv2:*)"
                )
        return values

    @model_validator(mode="after")
    def _one_scope(self) -> "Exemption":
        if bool(self.namespaces) == bool(self.images):
            raise ValueError(
                "give either `namespaces` or `images` (Gatekeeper cannot express 'these images only in these "
                "namespaces' in one constraint; write two exemptions)"
            )
        return self


class AdmissionSettings(Model):
    enforcement_action: EnforcementAction = "deny"
    reason: Optional[str] = None  # required when staging/prod are weakened below their profile
    bundles: list[Bundle] = Field(default_factory=lambda: ["pss-restricted", "general"], min_length=1)
    warn_bundles: list[Bundle] = Field(default_factory=list)  # extra rules reported at warn (never deny)
    require_image_digests: bool = True
    audit_interval_seconds: int = Field(default=60, ge=10, le=3600)
    replicas: int = Field(default=3, ge=1, le=10)
    webhook_failure_policy: FailurePolicy = "Fail"
    log_denies: bool = True
    emit_events: bool = True
    excluded_namespaces: list[str] = Field(default_factory=list)  # beyond SYSTEM_NAMESPACES, for every rule
    rules: dict[str, RuleOverride] = Field(default_factory=dict)
    exemptions: list[Exemption] = Field(default_factory=list)
    helm_values: dict[str, Any] = Field(default_factory=dict, description="Helm escape hatch, merged over ours")

    @field_validator("excluded_namespaces")
    @classmethod
    def _excluded(cls, values: list[str]) -> list[str]:
        return _namespace_globs(values)

    @model_validator(mode="after")
    def _against_templates(self) -> "AdmissionSettings":
        from secstack.gatekeeper import GatekeeperError, load_rules

        try:
            rules = load_rules()
        except GatekeeperError as exc:
            raise ValueError(f"the policy library cannot be loaded: {exc}") from None
        known = ", ".join(sorted(rules)) or "none"
        errors: list[InitErrorDetails] = []

        def problem(loc: tuple, message: str, value: Any) -> None:
            errors.append(InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=value))

        for kind, override in self.rules.items():
            if kind not in rules:
                problem(("rules", kind), f"unknown rule kind {kind!r}; known kinds: {known}", kind)
                continue
            schema = (rules[kind].parameter_schema or {})
            for error in _schema_errors(schema, override.parameters):
                path = tuple(str(p) for p in error.absolute_path)
                problem(("rules", kind, "parameters", *path), f"{error.message} (schema of {rules[kind].folder}/template.yaml)", error.instance)
        for i, exemption in enumerate(self.exemptions):
            if exemption.rule not in rules:
                problem(("exemptions", i, "rule"), f"unknown rule kind {exemption.rule!r}; known kinds: {known}", exemption.rule)
        if errors:
            raise ValidationError.from_exception_data("AdmissionSettings", errors)
        return self


def _schema_errors(schema: dict, parameters: dict) -> list:
    """Errors of `parameters` against a template's openAPIV3Schema (unknown keys rejected, as Gatekeeper's
    structural schema would prune them silently)."""
    if not schema:
        return []
    strict = _strict(schema)
    validator = jsonschema.Draft7Validator(strict)
    return sorted(validator.iter_errors(parameters), key=lambda e: list(e.absolute_path))


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (_strict(v) if k not in ("properties", "patternProperties") else {n: _strict(s) for n, s in v.items()})
           for k, v in schema.items() if not k.startswith("x-kubernetes-") and k not in ("nullable", "format")}
    if "properties" in out and "additionalProperties" not in out and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


def bundle_kinds(bundles: list[str]) -> set[str]:
    """Every rule kind the bundles run (includes resolved, e.g. pss-restricted runs pss-baseline's kinds too)."""
    from secstack.gatekeeper import GatekeeperError, load_bundles

    loaded = load_bundles()
    missing = [b for b in bundles if b not in loaded]
    if missing:
        raise GatekeeperError(f"bundles.yaml defines no bundle {', '.join(missing)}")
    return {kind for bundle in bundles for kind in loaded[bundle].kinds}


def _bundles_weaker(value: Any, floor: Any) -> bool:
    from secstack.gatekeeper import GatekeeperError

    try:
        return not bundle_kinds(list(floor)) <= bundle_kinds(list(value))
    except GatekeeperError as exc:  # an unknown bundle name is reported by the schema check
        raise ValueError(str(exc)) from None


def _added(value: Any, floor: Any) -> bool:
    return bool(set(value) - set(floor))


def _rules_weaker(value: Any, floor: Any) -> bool:
    """An override that switches off a rule, or lowers a rule of the prod bundles below deny, is weaker."""
    if not isinstance(value, dict):
        raise TypeError("rules must be a map")
    from secstack.gatekeeper import GatekeeperError

    try:
        enforced = bundle_kinds(PROFILE["prod"]["bundles"]) | {DIGEST_RULE}
    except GatekeeperError as exc:
        raise ValueError(str(exc)) from None
    for kind, override in value.items():
        if not isinstance(override, dict):
            raise TypeError(f"rules.{kind} must be a map")
        if override.get("enabled") is False:
            return True
        action = override.get("enforcementAction")
        if kind in enforced and action in ACTION_ORDER and action != "deny":
            return True
    return False


# Which rules are on: prod enforces pss-restricted + general at deny. dev and staging enforce pss-baseline + general
# at warn and also report the restricted-only rules at warn, so a workload that would be denied in prod shows up in
# dev first. Digests are required in prod only (dev/staging deploy from tags while iterating).
PROFILE = {
    "dev": {
        "enforcementAction": "warn",
        "bundles": ["pss-baseline", "general"],
        "warnBundles": ["pss-restricted"],
        "requireImageDigests": False,
        "auditIntervalSeconds": 300,
        "replicas": 1,
        "webhookFailurePolicy": "Ignore",
        "excludedNamespaces": [],
        "rules": {},
    },
    "staging": {
        "enforcementAction": "warn",
        "bundles": ["pss-baseline", "general"],
        "warnBundles": ["pss-restricted"],
        "requireImageDigests": False,
        "auditIntervalSeconds": 120,
        "replicas": 2,
        "webhookFailurePolicy": "Ignore",
        "excludedNamespaces": [],
        "rules": {},
    },
    "prod": {
        "enforcementAction": "deny",
        "bundles": ["pss-restricted", "general"],
        "warnBundles": [],
        "requireImageDigests": True,
        "auditIntervalSeconds": 60,
        "replicas": 3,
        "webhookFailurePolicy": "Fail",
        "excludedNamespaces": [],
        "rules": {},
    },
}

GUARDS = [
    Guard(
        section="admission",
        path=("enforcementAction",),
        weaker=rank_weaker(ACTION_ORDER),
        hint="warn and dryrun admit every violating workload",
    ),
    Guard(
        section="admission",
        path=("bundles",),
        weaker=_bundles_weaker,
        hint="dropping a bundle switches its rules off",
    ),
    Guard(
        section="admission",
        path=("requireImageDigests",),
        weaker=turned_off,
        environments=("prod",),
        hint="a tag can be re-pushed to point at different code",
    ),
    Guard(
        section="admission",
        path=("excludedNamespaces",),
        weaker=_added,
        hint="an excluded namespace is checked by no rule at all; prefer a per-rule exemption",
    ),
    Guard(
        section="admission",
        path=("rules",),
        weaker=_rules_weaker,
        environments=("prod",),
        hint="a rule switched off or below deny admits violating workloads",
    ),
    Guard(
        section="admission",
        path=("webhookFailurePolicy",),
        weaker=rank_weaker(["Ignore", "Fail"]),
        environments=("prod",),
        hint="with Ignore, workloads are admitted unchecked whenever the webhook is unreachable",
    ),
]
