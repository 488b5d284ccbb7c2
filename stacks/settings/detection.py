"""Detection settings: in-cluster scanning (`secstack:scanning`, Trivy operator) and runtime detection
(`secstack:runtime`, Falco with Falcosidekick).

Severity thresholds are a minimum: `HIGH` records and gates HIGH and CRITICAL. The same threshold drives the Trivy
operator's reports and `secstack scan IMAGE` in CI, so an image that passes CI is not flagged by the cluster.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal, Optional

from pydantic import Field, field_validator

from .base import Guard, Model, networks, rank_weaker, secret_ref, turned_off

SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
Severity = Literal["UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
# Falco's priorities, most severe first (the order falco.yaml `priority` and Falcosidekick `minimumpriority` use).
FALCO_PRIORITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")
FalcoPriority = Literal["emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"]
ComplianceSpec = Literal["k8s-cis-1.23", "k8s-nsa-1.0", "k8s-pss-baseline-0.1", "k8s-pss-restricted-0.1"]
# The ECS instance metadata service: reachable from every pod unless blocked, and it hands out RAM role credentials.
ALIBABA_METADATA_IP = ipaddress.ip_address("100.100.100.200")
DURATION = r"^\d+(s|m|h)$"
QUANTITY_CPU = r"^\d+(\.\d+)?m?$"
QUANTITY_MEMORY = r"^\d+(Ki|Mi|Gi|M|G)?$"
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
PROCESS_NAME = re.compile(r"^[A-Za-z0-9._+-]{1,15}$")  # Falco truncates proc.name to 15 characters (TASK_COMM_LEN)


def severities_at_or_above(threshold: str) -> list[str]:
    """`HIGH` -> [HIGH, CRITICAL]: what a minimum severity records and gates."""
    return list(SEVERITIES[SEVERITIES.index(threshold):])


def priority_weaker(value: str, floor: str) -> bool:
    """A higher minimum priority lets fewer events through."""
    return FALCO_PRIORITIES.index(value) < FALCO_PRIORITIES.index(floor)


def adds_entries(value: Any, floor: Any) -> bool:
    """An exclusion/trust list that grows beyond the profile is weaker."""
    return bool(set(value) - set(floor))


def drops_entries(value: Any, floor: Any) -> bool:
    return bool(set(floor) - set(value))


class Scanners(Model):
    vulnerability: bool = True
    config_audit: bool = True
    rbac_assessment: bool = True
    exposed_secret: bool = True
    infra_assessment: bool = True


class ScanJobResources(Model):
    requests_cpu: str = Field(default="100m", pattern=QUANTITY_CPU)
    requests_memory: str = Field(default="128Mi", pattern=QUANTITY_MEMORY)
    limits_cpu: str = Field(default="500m", pattern=QUANTITY_CPU)
    limits_memory: str = Field(default="512Mi", pattern=QUANTITY_MEMORY)


class ScanningSettings(Model):
    enabled: bool = True
    reason: Optional[str] = None
    severity_threshold: Severity = "HIGH"
    ignore_unfixed: bool = False
    scanners: Scanners = Scanners()
    excluded_namespaces: list[str] = Field(default_factory=lambda: ["kube-node-lease", "kube-public"])
    compliance_specs: list[ComplianceSpec] = Field(
        default_factory=lambda: ["k8s-cis-1.23", "k8s-nsa-1.0", "k8s-pss-restricted-0.1"]
    )
    compliance_cron: str = Field(default="0 */6 * * *", pattern=r"^(\S+\s+){4}\S+$")
    scan_jobs_concurrent_limit: int = Field(default=3, ge=1, le=50)
    scan_job_timeout: str = Field(default="5m", pattern=DURATION)
    scan_job_resources: ScanJobResources = ScanJobResources()
    report_ttl: str = Field(default="24h", pattern=DURATION)

    @field_validator("excluded_namespaces")
    @classmethod
    def _never_hide_apps(cls, values: list[str]) -> list[str]:
        for value in values:
            if value in ("*", "") or value.startswith("*"):
                raise ValueError(f"{value!r} would exclude every namespace from scanning; list namespaces by name")
        return values


class ElasticsearchOutput(Model):
    """Falcosidekick -> the logging area's Elasticsearch (ECK, HTTPS). The password never sits in plain config."""

    enabled: bool = True
    hostport: str = "https://security-logs-es-http.logging.svc:9200"
    index: str = Field(default="logs-falco-default", pattern=r"^[a-z0-9][a-z0-9._-]*$")
    username: str = Field(default="falcosidekick", min_length=1)
    # Shared with secstack:logging.falcosidekickPassword: the logging area's `falcosidekick` file-realm user
    # (role secstack_falco_writer: create_doc on logs-falco-*) has this password.
    password_secret: str = secret_ref(default="falco-elasticsearch-password")
    ca_secret_name: str = Field(
        default="security-logs-es-http-certs-public",
        description="Secret in the falco namespace with key ca.crt: a copy of ECK's public HTTP CA from `logging`",
    )
    minimum_priority: FalcoPriority = "notice"

    @field_validator("hostport")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL (Falco events carry command lines and file names)")
        return value


class RuntimeSettings(Model):
    enabled: bool = True
    reason: Optional[str] = None
    minimum_priority: FalcoPriority = "notice"
    alert_minimum_priority: FalcoPriority = "warning"
    least_privileged: bool = True
    allowed_outbound_cidrs: list[str] = Field(
        default_factory=lambda: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    )
    allowed_outbound_hosts: list[str] = Field(default_factory=list)
    trusted_namespaces: list[str] = Field(default_factory=lambda: ["kube-system", "falco", "trivy-system"])
    secret_reader_processes: list[str] = Field(default_factory=lambda: ["pilot-agent", "envoy"])
    secret_paths: list[str] = Field(default_factory=lambda: ["/var/run/secrets", "/run/secrets"], min_length=1)
    elasticsearch: ElasticsearchOutput = ElasticsearchOutput()
    sidekick_replicas: int = Field(default=2, ge=1, le=10)

    @field_validator("allowed_outbound_cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        for value, network in zip(values, networks(values, "10.0.0.0/8", "allows every destination and turns the outbound rule off")):
            if ALIBABA_METADATA_IP in network:
                raise ValueError(
                    f"{value!r} contains the ECS metadata service {ALIBABA_METADATA_IP}, which hands out RAM "
                    "credentials; connections to it must stay alerting"
                )
        return values

    @field_validator("allowed_outbound_hosts")
    @classmethod
    def _hosts(cls, values: list[str]) -> list[str]:
        for value in values:
            if not HOSTNAME.match(value):
                raise ValueError(f"{value!r} is not a fully qualified host name such as api.example.com")
        return values

    @field_validator("secret_paths")
    @classmethod
    def _paths(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.match(r"^(/[A-Za-z0-9._-]+)+$", value):
                raise ValueError(f"{value!r} is not an absolute directory path such as /var/run/secrets")
        return values

    @field_validator("secret_reader_processes")
    @classmethod
    def _process_names(cls, values: list[str]) -> list[str]:
        for value in values:
            if not PROCESS_NAME.match(value):
                raise ValueError(
                    f"{value!r} is not a process name Falco can match (letters, digits, ._+-, at most 15 characters)"
                )
        return values


_SCANNER_KEYS = ("vulnerability", "configAudit", "rbacAssessment", "exposedSecret", "infraAssessment")


def _scanning(threshold: str, concurrency: int) -> dict:
    # Every guarded key is in the profile: a guard compares the stack's value with the profile's.
    return {
        "enabled": True,
        "severityThreshold": threshold,
        "ignoreUnfixed": False,
        "scanners": {key: True for key in _SCANNER_KEYS},
        "excludedNamespaces": ["kube-node-lease", "kube-public"],
        "complianceSpecs": ["k8s-cis-1.23", "k8s-nsa-1.0", "k8s-pss-restricted-0.1"],
        "scanJobsConcurrentLimit": concurrency,
    }


def _runtime(sidekick_replicas: int) -> dict:
    return {
        "enabled": True,
        "minimumPriority": "notice",
        "alertMinimumPriority": "warning",
        "leastPrivileged": True,
        "trustedNamespaces": ["kube-system", "falco", "trivy-system"],
        "elasticsearch": {"enabled": True},
        "sidekickReplicas": sidekick_replicas,
    }


# dev records and gates HIGH and above so the inner loop is not blocked by medium noise; staging and prod record
# and gate MEDIUM too: chained medium findings are how intrusions start, and prod's reports are the inventory.
SCANNING_PROFILE = {"dev": _scanning("HIGH", 3), "staging": _scanning("MEDIUM", 5), "prod": _scanning("MEDIUM", 10)}
RUNTIME_PROFILE = {"dev": _runtime(1), "staging": _runtime(2), "prod": _runtime(2)}

SCANNING_GUARDS = [
    Guard(section="scanning", path=("enabled",), weaker=turned_off, hint="no in-cluster vulnerability or config scanning"),
    *[
        Guard(section="scanning", path=("scanners", key), weaker=turned_off, hint=f"the {key} scanner produces no reports")
        for key in _SCANNER_KEYS
    ],
    Guard(
        section="scanning",
        path=("severityThreshold",),
        weaker=rank_weaker(list(reversed(SEVERITIES))),
        hint="findings below the threshold are neither reported nor gated",
    ),
    Guard(section="scanning", path=("ignoreUnfixed",), weaker=lambda v, f: bool(v) and not f, hint="unfixed CVEs disappear from the reports"),
    Guard(section="scanning", path=("excludedNamespaces",), weaker=adds_entries, hint="excluded namespaces are never scanned"),
    Guard(section="scanning", path=("complianceSpecs",), weaker=drops_entries, hint="a dropped compliance report is no longer produced"),
]

RUNTIME_GUARDS = [
    Guard(section="runtime", path=("enabled",), weaker=turned_off, hint="no runtime detection at all"),
    Guard(section="runtime", path=("minimumPriority",), weaker=priority_weaker, hint="rules below this priority are not evaluated"),
    Guard(section="runtime", path=("alertMinimumPriority",), weaker=priority_weaker, hint="fewer runtime events reach Alertmanager"),
    Guard(section="runtime", path=("trustedNamespaces",), weaker=adds_entries, hint="workloads in trusted namespaces are not watched"),
    Guard(section="runtime", path=("leastPrivileged",), weaker=turned_off, hint="Falco then runs as a fully privileged container"),
    Guard(section="runtime", path=("elasticsearch", "enabled"), weaker=turned_off, hint="runtime events are no longer kept in Elasticsearch"),
]
