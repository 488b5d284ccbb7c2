"""Gatekeeper: OPA Gatekeeper with audit, the namespace exclusions, every ConstraintTemplate of the policy library and
one Constraint per enabled rule.

Ordering inside the component: namespace -> Helm release (CRDs, webhook) -> Config and ConstraintTemplates ->
Constraints. Each ConstraintTemplate carries `pulumi.com/waitFor: jsonpath={.status.created}=true`, so Pulumi only
reports it ready once Gatekeeper has generated the constraint CRD; each Constraint `depends_on` its template (and the
Config), so it is created after that CRD exists. `depends_on` alone would only wait for the template object to be
accepted by the API server, and the constraint would race Gatekeeper's CRD generation ("no matches for kind").
"""
from __future__ import annotations

from typing import Any, NotRequired, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.charts import GATEKEEPER
from components.common import child, custom_resource, deep_merge, helm_release, meta

NAMESPACE = "gatekeeper-system"
CONFIG_API = "config.gatekeeper.sh/v1alpha1"
TEMPLATE_API = "templates.gatekeeper.sh/v1"
WAIT_FOR_CRD = "jsonpath={.status.created}=true"
# Emitted by the chart's templates only when set (`hasKey`), so they are absent from its values.yaml.
EVENT_KEYS = ("emitAdmissionEvents", "emitAuditEvents")


class GatekeeperArgs(TypedDict):
    replicas: int
    audit_interval_seconds: int
    webhook_failure_policy: str  # Fail | Ignore
    log_denies: bool
    emit_events: bool
    excluded_namespaces: list[str]  # not processed by Gatekeeper at all (Config, webhook namespaceSelector)
    templates: list[dict[str, Any]]  # ConstraintTemplate manifests, one per rule folder
    constraints: list[dict[str, Any]]  # constraint manifests from secstack.admission_constraints
    namespace: NotRequired[str]
    helm_values: NotRequired[dict[str, Any]]


def pdb_min_available(replicas: int) -> int:
    # Keep a quorum of webhook pods through node drains, but never block a drain of a small deployment.
    return 1 if replicas <= 2 else replicas - 1


def helm_values(args: GatekeeperArgs, namespace: str) -> dict[str, Any]:
    replicas = args["replicas"]
    others = [ns for ns in args["excluded_namespaces"] if ns != namespace and "*" not in ns]
    # No CPU limits on the webhook: throttling shows up as admission latency, and with failurePolicy Fail a
    # timed-out review is a denied request.
    resources = {"requests": {"cpu": "200m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    values: dict[str, Any] = {
        "replicas": replicas,
        "auditInterval": args["audit_interval_seconds"],
        "disableAudit": False,
        "auditMatchKindOnly": True,
        "constraintViolationsLimit": 20,
        "logDenies": args["log_denies"],
        "emitAdmissionEvents": args["emit_events"],
        "emitAuditEvents": args["emit_events"],
        # Events stay in gatekeeper-system, readable by policy admins only (a namespace admin could delete them).
        "admissionEventsInvolvedNamespace": False,
        "auditEventsInvolvedNamespace": False,
        "metricsBackends": ["prometheus"],
        "validatingWebhookFailurePolicy": args["webhook_failure_policy"],
        "validatingWebhookTimeoutSeconds": 3,
        # The API server skips the webhook for these namespaces, so a fail-closed webhook cannot block kube-system.
        "validatingWebhookExemptNamespacesLabels": {"kubernetes.io/metadata.name": sorted(set(args["excluded_namespaces"]) - {namespace})},
        "disableMutation": True,  # no mutation policies: one webhook less in the request path
        "enableRuntimeDefaultSeccompProfile": True,
        "podAnnotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8888"},
        "controllerManager": {
            "exemptNamespaces": others,
            "resources": resources,
            "tlsMinVersion": 1.3,
            "priorityClassName": "system-cluster-critical",
        },
        "audit": {"resources": resources, "priorityClassName": "system-cluster-critical"},
        "pdb": {"controllerManager": {"minAvailable": pdb_min_available(replicas)}},
    }
    return deep_merge(values, args.get("helm_values") or {})


class Gatekeeper(pulumi.ComponentResource):
    """OPA Gatekeeper with audit, the namespace exclusions, every ConstraintTemplate of the policy library and one Constraint per enabled rule."""

    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: GatekeeperArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:admission:Gatekeeper", name, None, opts)
        ns = args.get("namespace", NAMESPACE)
        namespace = k8s.core.v1.Namespace(
            ns,
            metadata=meta(
                ns,
                labels={
                    # Gatekeeper never reviews its own namespace (its pods must start while the webhook is down).
                    "admission.gatekeeper.sh/ignore": "no-self-managing",
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                    "secstack.io/system": "true",
                },
            ),
            opts=child(self),
        )
        release = helm_release("gatekeeper", GATEKEEPER, ns, helm_values(args, ns), child(self, [namespace]))
        config = custom_resource(
            "gatekeeper-config",
            CONFIG_API,
            "Config",
            meta("config", ns),
            {"match": [{"excludedNamespaces": list(args["excluded_namespaces"]), "processes": ["*"]}]},
            child(self, [release]),
        )
        templates: dict[str, pulumi.Resource] = {}
        for template in args["templates"]:
            kind = template["spec"]["crd"]["spec"]["names"]["kind"]
            source = template.get("metadata") or {}
            metadata = meta(
                source["name"],
                labels=source.get("labels"),
                annotations={**(source.get("annotations") or {}), "pulumi.com/waitFor": WAIT_FOR_CRD},
            )
            templates[kind] = custom_resource(
                f"template-{source['name']}",
                template.get("apiVersion", TEMPLATE_API),
                "ConstraintTemplate",
                metadata,
                template["spec"],
                child(self, [release]),
            )
        constraints = []
        for constraint in args["constraints"]:
            kind = constraint["kind"]
            if kind not in templates:
                raise ValueError(f"constraint {constraint['metadata']['name']}: no ConstraintTemplate defines {kind}")
            source = constraint["metadata"]
            constraints.append(
                custom_resource(
                    f"constraint-{source['name']}",
                    constraint["apiVersion"],
                    kind,
                    meta(source["name"], labels=source.get("labels"), annotations=source.get("annotations") or {}),
                    constraint["spec"],
                    child(self, [templates[kind], config]),
                )
            )
        self.release = release
        self.templates = templates
        self.constraints = constraints
        self.namespace = pulumi.Output.from_input(ns)
        self.register_outputs({"namespace": self.namespace, "constraints": len(constraints), "templates": len(templates)})
