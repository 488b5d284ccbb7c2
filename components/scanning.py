"""TrivyOperator: continuous in-cluster scanning (vulnerabilities, config audit, RBAC, exposed secrets, node infra)
and compliance reports, with hardened scan jobs and metrics for Prometheus."""
from __future__ import annotations

from typing import Any, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.charts import TRIVY_OPERATOR
from components.common import child, helm_release, meta

NAMESPACE = "trivy-system"
RELEASE = "trivy-operator"
# The chart's metrics Service (headless): name = release, port "metrics" (80 -> container 8080), selector labels below.
METRICS_SERVICE = RELEASE
METRICS_PORT_NAME = "metrics"
METRICS_LABELS = {"app.kubernetes.io/name": "trivy-operator", "app.kubernetes.io/instance": RELEASE}
SCAN_UID = 10000


class ScannersArgs(TypedDict):
    vulnerability: bool
    config_audit: bool
    rbac_assessment: bool
    exposed_secret: bool
    infra_assessment: bool


class ScanJobResourcesArgs(TypedDict):
    requests_cpu: str
    requests_memory: str
    limits_cpu: str
    limits_memory: str


class TrivyOperatorArgs(TypedDict):
    severities: list[str]  # reported severities, e.g. [MEDIUM, HIGH, CRITICAL]
    ignore_unfixed: bool
    scanners: ScannersArgs
    excluded_namespaces: list[str]
    compliance_specs: list[str]
    compliance_cron: str
    scan_jobs_concurrent_limit: int
    scan_job_timeout: str
    scan_job_resources: ScanJobResourcesArgs
    report_ttl: str


def scan_job_pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": SCAN_UID,
        "runAsGroup": SCAN_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def scan_job_container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }


def trivy_values(args: TrivyOperatorArgs) -> dict[str, Any]:
    scanners = args["scanners"]
    resources = args["scan_job_resources"]
    specs = list(args["compliance_specs"])
    return {
        "excludeNamespaces": ",".join(args["excluded_namespaces"]),
        "operator": {
            "replicas": 1,
            "scanJobsConcurrentLimit": args["scan_jobs_concurrent_limit"],
            "scanNodeCollectorLimit": 1,
            "scanJobTimeout": args["scan_job_timeout"],
            # Finished jobs and their secrets (registry credentials) are removed instead of lingering.
            "scanJobTTL": "10m",
            "scanSecretTTL": "10m",
            "vulnerabilityScannerEnabled": scanners["vulnerability"],
            "configAuditScannerEnabled": scanners["config_audit"],
            "rbacAssessmentScannerEnabled": scanners["rbac_assessment"],
            "exposedSecretScannerEnabled": scanners["exposed_secret"],
            "infraAssessmentScannerEnabled": scanners["infra_assessment"],
            "clusterComplianceEnabled": bool(specs),
            "scannerReportTTL": args["report_ttl"],
            "metricsFindingsEnabled": True,
            "metricsVulnIdEnabled": False,  # one series per CVE id explodes Prometheus cardinality
            "builtInTrivyServer": False,
        },
        "trivy": {
            "severity": ",".join(args["severities"]),
            "ignoreUnfixed": args["ignore_unfixed"],
            "resources": {
                "requests": {"cpu": resources["requests_cpu"], "memory": resources["requests_memory"]},
                "limits": {"cpu": resources["limits_cpu"], "memory": resources["limits_memory"]},
            },
        },
        "trivyOperator": {
            "scanJobAutomountServiceAccountToken": False,
            "scanJobCompressLogs": True,
            "scanJobPodTemplatePodSecurityContext": scan_job_pod_security_context(),
            "scanJobPodTemplateContainerSecurityContext": scan_job_container_security_context(),
        },
        "compliance": {"specs": specs, "cron": args["compliance_cron"], "reportType": "summary"},
        # Scraped through the monitoring area's ServiceMonitor (METRICS_LABELS); a chart one would scrape twice.
        "serviceMonitor": {"enabled": False},
        # The operator image's user is not numeric; runAsNonRoot needs a numeric uid to be verifiable.
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": SCAN_UID,
            "runAsGroup": SCAN_UID,
            "fsGroup": SCAN_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "securityContext": {
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    }


class TrivyOperator(pulumi.ComponentResource):
    """Continuous in-cluster scanning (vulnerabilities, config audit, RBAC, exposed secrets, node infra) and compliance reports, with hardened scan jobs and metrics for Prometheus."""

    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: TrivyOperatorArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:scanning:TrivyOperator", name, None, opts)
        # The infra-assessment node-collector needs hostPID and read-only hostPath mounts (node CIS checks), which
        # only the privileged level admits; without it the scan jobs meet `restricted`.
        level = "privileged" if args["scanners"]["infra_assessment"] else "restricted"
        namespace = k8s.core.v1.Namespace(
            NAMESPACE,
            metadata=meta(
                NAMESPACE,
                labels={
                    "pod-security.kubernetes.io/enforce": level,
                    "pod-security.kubernetes.io/audit": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                    # A sidecar would keep every scan Job from completing.
                    "istio-injection": "disabled",
                    "secstack.io/system": "true",
                },
            ),
            opts=child(self),
        )
        self.release = helm_release(RELEASE, TRIVY_OPERATOR, NAMESPACE, trivy_values(args), child(self, [namespace]))
        self.namespace = pulumi.Output.from_input(NAMESPACE)
        self.register_outputs({"namespace": self.namespace, "release": self.release.name})
