"""Admission verdicts of a preview: the stack's own Gatekeeper constraints run over every rendered Kubernetes object,
and written exemptions that have passed their `expires` date.

deny -> mandatory, warn -> advisory, dryrun -> nothing (as in the cluster, where dryrun only shows up in audit).
"""
from __future__ import annotations

import datetime as _dt

from secstack.admission_constraints import constraints_for, expired_exemptions, expiring_exemptions
from secstack.gatekeeper import Engine, EvaluationError, GatekeeperError, load_rules
from secstack.preview import Preview, manifest_filename
from secstack.verdicts import ADVISORY, MANDATORY, Verdict, checker

EXPIRED_POLICY = "admission/expired-exemption"
EXPIRING_POLICY = "admission/expiring-exemption"
ENGINE_POLICY = "gatekeeper/evaluation-error"
LEVELS = {"deny": MANDATORY, "warn": ADVISORY}
EXPIRY_WARNING_DAYS = 14


def today() -> _dt.date:
    """The date exemptions are checked against (tests replace this function)."""
    return _dt.date.today()


def _severity(rule_folder: str, template: dict) -> str:
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    declared = annotations.get("secstack.io/severity")
    if declared in ("critical", "high", "medium", "low"):
        return declared
    return "high" if rule_folder.startswith("pss-") else "medium"


@checker
def gatekeeper_constraints(preview: Preview) -> list[Verdict]:
    try:
        constraints = constraints_for(preview.settings)
        rules = load_rules()
    except GatekeeperError as exc:
        return [Verdict(policy=ENGINE_POLICY, level=MANDATORY, severity="high", message=str(exc), resource=preview.stack)]
    engine = Engine(rules)
    verdicts: list[Verdict] = []
    for registration, obj in preview.kubernetes_objects():
        try:
            violations = engine.evaluate(obj, constraints)
        except EvaluationError as exc:  # fail closed: an object the rules cannot evaluate is not admitted
            verdicts.append(Verdict(policy=ENGINE_POLICY, level=MANDATORY, severity="high", message=str(exc),
                                    resource=registration.urn, resource_type=registration.type))
            continue
        for violation in violations:
            level = LEVELS.get(violation.enforcement_action)
            if level is None:
                continue
            rule = rules[violation.kind]
            annotations = (rule.template.get("metadata") or {}).get("annotations") or {}
            where = f"{violation.object_kind} {violation.namespace or '-'}/{violation.name}"
            verdicts.append(
                Verdict(
                    policy=f"gatekeeper/{violation.kind}",
                    level=level,
                    severity=_severity(rule.folder, rule.template),
                    message=f"{where}: {violation.message} (constraint {violation.constraint}, {violation.enforcement_action})",
                    resource=registration.urn,
                    resource_type=registration.type,
                    description=str(annotations.get("description") or annotations.get("metadata.gatekeeper.sh/title") or rule.folder),
                    remediation=(
                        f"fix the manifest, or add a secstack:admission.exemptions entry for rule {violation.kind} "
                        "with the namespaces or images it cannot apply to, a reason and an expires date"
                    ),
                    file=f"manifests/{manifest_filename(obj)}",
                )
            )
    return verdicts


@checker
def exemption_expiry(preview: Preview) -> list[Verdict]:
    now = today()
    verdicts = []
    for i, exemption in expired_exemptions(preview.settings, now):
        scope = ", ".join(exemption.namespaces or exemption.images)
        verdicts.append(
            Verdict(
                policy=EXPIRED_POLICY,
                level=MANDATORY,
                severity="high",
                message=(
                    f"secstack:admission.exemptions[{i}] ({exemption.rule} for {scope}) expired on "
                    f"{exemption.expires.isoformat()} (today is {now.isoformat()}); reason was: {exemption.reason}"
                ),
                resource=f"{preview.stack}:secstack:admission.exemptions[{i}]",
                resource_type="secstack:admission:Exemption",
                description="a written exemption from an admission rule is past its expiry date",
                remediation="fix the workloads and remove the exemption, or renew it with a new expires date and reason",
                file=f"stacks/Pulumi.{preview.stack}.yaml",
            )
        )
    for i, exemption in expiring_exemptions(preview.settings, now, EXPIRY_WARNING_DAYS):
        verdicts.append(
            Verdict(
                policy=EXPIRING_POLICY,
                level=ADVISORY,
                severity="low",
                message=f"secstack:admission.exemptions[{i}] ({exemption.rule}) expires on {exemption.expires.isoformat()}",
                resource=f"{preview.stack}:secstack:admission.exemptions[{i}]",
                resource_type="secstack:admission:Exemption",
                description=f"a written exemption expires within {EXPIRY_WARNING_DAYS} days",
                remediation="plan the fix, or renew the exemption with a reason",
                file=f"stacks/Pulumi.{preview.stack}.yaml",
            )
        )
    return verdicts
