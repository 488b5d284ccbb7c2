"""The Gatekeeper constraints of a stack, built once from its settings.

This is the single source for the Constraint CRs that `components/admission.py` declares, for the offline checks
of `secstack preview` and `secstack policy check --stack`, and for the CrossGuard pack: all of them evaluate
exactly these objects. No Pulumi import.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from secstack.gatekeeper import POD_KINDS, Constraint, GatekeeperError, load_bundles, load_rules, match_kinds  # noqa: F401 - POD_KINDS re-exported
from stacks.settings import Settings
from stacks.settings.admission import DIGEST_RULE, SYSTEM_NAMESPACES, Exemption, weaker_action

EXEMPTIONS_ANNOTATION = "secstack.io/exemptions"
RULE_LABEL = "secstack.io/rule"

@dataclass(frozen=True)
class StackConstraint(Constraint):
    """A Constraint that also carries the written exemptions it applies (reason, expiry), as an annotation on the
    CR so that preview-time policies and `kubectl get` readers see why a namespace or image is waived."""

    exemptions: tuple[dict, ...] = ()
    rule_folder: str = ""

    def to_manifest(self) -> dict:
        manifest = super().to_manifest()
        metadata = manifest["metadata"]
        metadata["labels"] = {"app.kubernetes.io/managed-by": "secstack", RULE_LABEL: self.rule_folder or self.name}
        metadata["annotations"] = {EXEMPTIONS_ANNOTATION: json.dumps(list(self.exemptions), sort_keys=True)}
        return manifest

    @classmethod
    def from_manifest(cls, obj: dict) -> "StackConstraint":
        base = Constraint.from_manifest(obj)
        return cls(
            kind=base.kind,
            name=base.name,
            enforcement_action=base.enforcement_action,
            parameters=base.parameters,
            match=base.match,
            exemptions=tuple(exemptions_of(obj)),
            rule_folder=((obj.get("metadata") or {}).get("labels") or {}).get(RULE_LABEL, ""),
        )


def exemptions_of(manifest: dict) -> list[dict]:
    """The exemptions recorded on a constraint manifest (empty when it has none or the annotation is unreadable)."""
    raw = (((manifest.get("metadata") or {}).get("annotations")) or {}).get(EXEMPTIONS_ANNOTATION)
    try:
        value = json.loads(raw) if isinstance(raw, str) else []
    except json.JSONDecodeError:
        return []
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


def _record(exemption: Exemption) -> dict:
    out: dict[str, Any] = {"reason": exemption.reason, "expires": exemption.expires.isoformat() if exemption.expires else None}
    if exemption.namespaces:
        out["namespaces"] = list(exemption.namespaces)
    if exemption.images:
        out["images"] = list(exemption.images)
    return out


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


@dataclass(frozen=True)
class _Plan:
    """How one rule runs in a stack: its main action and parameters, and an optional stricter advisory copy."""

    action: Optional[str]
    parameters: dict
    advisory_parameters: Optional[dict] = None  # a second constraint at warn (warnBundles with other parameters)


def _bundle_view(names: list[str]) -> tuple[set[str], dict[str, dict]]:
    loaded = load_bundles()
    kinds: set[str] = set()
    parameters: dict[str, dict] = {}
    for name in names:
        if name not in loaded:
            raise GatekeeperError(f"policies/gatekeeper/bundles.yaml defines no bundle {name!r}")
        kinds |= set(loaded[name].kinds)
        parameters.update({k: v for k, v in loaded[name].parameters.items()})
    return kinds, parameters


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def plan_rule(settings: Settings, kind: str) -> _Plan:
    """The action (None: off) and parameters of a rule in this stack.

    Rules of `bundles` run at `enforcementAction` with those bundles' parameters; rules only in `warnBundles` run
    at warn (or weaker). A rule in both whose warn-bundle parameters are stricter gets a second, advisory
    constraint when the main one is at deny; when both would be at the same action they merge into one constraint
    with the stricter parameters. `rules.<Kind>` overrides come last.
    """
    admission = settings.admission
    enforced, enforced_params = _bundle_view(list(admission.bundles))
    advisory, advisory_params = _bundle_view(list(admission.warn_bundles))
    override = admission.rules.get(kind)
    action: Optional[str] = None
    parameters: dict = {}
    extra: Optional[dict] = None
    warn = weaker_action("warn", admission.enforcement_action)
    if kind in enforced:
        action, parameters = admission.enforcement_action, _copy(enforced_params.get(kind) or {})
        stricter = advisory_params.get(kind)
        if kind in advisory and stricter is not None and stricter != enforced_params.get(kind):
            if action == warn:
                parameters = _copy(stricter)
            else:
                extra = _copy(stricter)
    elif kind in advisory:
        action, parameters = warn, _copy(advisory_params.get(kind) or {})
    if kind == DIGEST_RULE and not admission.require_image_digests:
        action, extra = None, None
    if override is not None:
        if override.enabled is False:
            return _Plan(None, {})
        if override.enabled and action is None:
            action = admission.enforcement_action
        if override.enforcement_action:
            action = override.enforcement_action
        parameters.update(_copy(override.parameters))
        if extra is not None:
            extra.update(_copy(override.parameters))
    if extra is not None and action == warn:
        parameters, extra = extra, None
    return _Plan(action, parameters, extra)


def enforcement_of(settings: Settings, kind: str) -> Optional[str]:
    """The enforcementAction of a rule in this stack, or None when the rule is off."""
    return plan_rule(settings, kind).action


def constraints_for(settings: Settings) -> list[StackConstraint]:
    """One constraint per enabled rule, named after its rule folder, sorted by kind (plus `<folder>-advisory` for
    a rule that is enforced with baseline parameters and reported at warn with stricter ones)."""
    rules = load_rules()
    admission = settings.admission
    warn = weaker_action("warn", admission.enforcement_action)
    out: list[StackConstraint] = []
    for kind in sorted(rules):
        plan = plan_rule(settings, kind)
        if plan.action is None:
            continue
        rule = rules[kind]
        exemptions = [e for e in admission.exemptions if e.rule == kind]
        images = [image for e in exemptions for image in e.images]
        excluded = _unique([*SYSTEM_NAMESPACES, *admission.excluded_namespaces, *(ns for e in exemptions for ns in e.namespaces)])
        variants = [(rule.folder, plan.action, plan.parameters)]
        if plan.advisory_parameters is not None:
            variants.append((f"{rule.folder}-advisory", warn, plan.advisory_parameters))
        for name, action, parameters in variants:
            parameters = _copy(parameters)
            if images:
                parameters["exemptImages"] = _unique([*(parameters.get("exemptImages") or []), *images])
            out.append(
                StackConstraint(
                    kind=kind,
                    name=name,
                    enforcement_action=action,
                    parameters=parameters,
                    match={"kinds": match_kinds(rule), "excludedNamespaces": list(excluded)},
                    exemptions=tuple(_record(e) for e in exemptions),
                    rule_folder=rule.folder,
                )
            )
    return out


def stack_constraints(stack: str, directory=None) -> list[StackConstraint]:
    """The constraints of a committed stack (raises StackFileError/SettingsError on a bad stack file)."""
    from secstack.preview import load_stack

    settings, _ = load_stack(stack, directory)
    return constraints_for(settings)


def expired_exemptions(settings: Settings, today: _dt.date) -> list[tuple[int, Exemption]]:
    """(index in secstack:admission.exemptions, exemption) for every exemption whose last valid day has passed."""
    return [(i, e) for i, e in enumerate(settings.admission.exemptions) if e.expires is not None and e.expires < today]


def expiring_exemptions(settings: Settings, today: _dt.date, within_days: int = 14) -> list[tuple[int, Exemption]]:
    horizon = today + _dt.timedelta(days=within_days)
    return [(i, e) for i, e in enumerate(settings.admission.exemptions) if e.expires is not None and today <= e.expires <= horizon]
