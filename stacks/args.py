"""Settings -> component args. The only place that knows both shapes."""
from __future__ import annotations

import json
from collections import defaultdict

import pulumi

from components.admission import GatekeeperArgs
from components.logging import SecurityLoggingArgs
from components.mesh import IstioMeshArgs, JwtProviderArgs, MeshServiceArgs, spiffe_principal
from components.monitoring import ReceiverArgs, SecurityMonitoringArgs
from components.data_security import DataSecurityArgs
from components.identity import INJECTION_LABEL, ROLE_NAME_ANNOTATION, role_name
from components.platform import PlatformArgs
from components.runtime import NAMESPACE as FALCO_NAMESPACE, FalcoArgs
from components.scanning import TrivyOperatorArgs
from components.teams import TeamArgs
from secstack.admission_constraints import constraints_for
from secstack.gatekeeper import load_rules
from stacks.settings import JwtAuthSettings, Settings
from stacks.settings.logging import LoggingSettings
from stacks.settings.detection import severities_at_or_above
from stacks.settings.admission import SYSTEM_NAMESPACES


def jwt_provider_args(jwt: JwtAuthSettings) -> JwtProviderArgs:
    return {
        "issuer": jwt.issuer,
        "jwks_uri": str(jwt.jwks_uri),
        "audiences": list(jwt.audiences),
        "forward_original_token": jwt.forward_original_token,
        "roles_claim": jwt.roles_claim,
        "scopes_claim": jwt.scopes_claim,
        "algorithms": list(jwt.algorithms),
        "leeway_seconds": jwt.leeway_seconds,
        "required_claims": list(jwt.required_claims),
    }


def pod_security_level(settings: Settings) -> str:
    return "restricted" if settings.is_prod else "baseline"


def team_args(settings: Settings) -> list[TeamArgs]:
    ns_of_team = {ns: team.name for team in settings.teams for ns in team.namespaces}
    callers_into: dict[str, set[str]] = defaultdict(set)
    for _, service, ns, _ in settings.services():
        for caller in service.allow_from:
            callers_into[ns].add(caller.split("/")[0])
    calls_to: dict[str, set[str]] = defaultdict(set)
    for ns, callers in callers_into.items():
        for caller in callers:
            calls_to[caller].add(ns)
    out: list[TeamArgs] = []
    for team in settings.teams:
        accounts = sorted({(ns, sa) for t, _, ns, sa in settings.services() if t.name == team.name})
        rrsa = rrsa_accounts(settings)
        out.append(
            {
                "name": team.name,
                "owner": team.owner,
                "namespaces": list(team.namespaces),
                "pod_security": pod_security_level(settings),
                "service_accounts": [
                    {"name": sa, "namespace": ns, **({"annotations": {ROLE_NAME_ANNOTATION: rrsa[(ns, sa)]}} if (ns, sa) in rrsa else {})}
                    for ns, sa in accounts
                ],
                "namespace_labels": {INJECTION_LABEL: "on"} if any(ns in team.namespaces for ns, _ in rrsa) else {},
                "viewer_groups": list(team.groups.viewers),
                "deployer_groups": list(team.groups.deployers),
                "quota": team.quota.model_dump(),
                "istio_injection": True,
                "ingress_from_namespaces": sorted({c for ns in team.namespaces for c in callers_into[ns] if c in ns_of_team}),
                "egress_to_namespaces": sorted({n for ns in team.namespaces for n in calls_to[ns]}),
            }
        )
    return out


def mesh_args(settings: Settings) -> IstioMeshArgs:
    mesh = settings.mesh
    services: list[MeshServiceArgs] = []
    for _, service, ns, _ in settings.services():
        services.append(
            {
                "namespace": ns,
                "app": service.name,
                "port": service.port,
                "allowed_principals": [spiffe_principal(*c.split("/"), mesh.trust_domain) for c in service.allow_from],
                "public": service.public,
                "jwt_rules": [rule.model_dump() for rule in service.jwt_rules],
            }
        )
    return {
        "mtls_mode": mesh.mtls_mode,
        "mesh_namespaces": [ns for team in settings.teams for ns in team.namespaces],
        "services": services,
        "jwt": jwt_provider_args(mesh.jwt) if mesh.jwt else None,
        "trust_domain": mesh.trust_domain,
        "istiod_replicas": mesh.istiod_replicas,
        "outbound_traffic_policy": mesh.outbound_traffic_policy,
        "access_log_json": mesh.access_log_json,
        "istiod_values": dict(mesh.istiod_values),
    }


def admission_args(settings: Settings) -> GatekeeperArgs:
    admission = settings.admission
    rules = load_rules()
    return {
        "replicas": admission.replicas,
        "audit_interval_seconds": admission.audit_interval_seconds,
        "webhook_failure_policy": admission.webhook_failure_policy,
        "log_denies": admission.log_denies,
        "emit_events": admission.emit_events,
        "excluded_namespaces": list(dict.fromkeys([*SYSTEM_NAMESPACES, *admission.excluded_namespaces])),
        "templates": [rules[kind].template for kind in sorted(rules)],
        "constraints": [c.to_manifest() for c in constraints_for(settings)],
        "helm_values": dict(admission.helm_values),
    }


def scanning_args(settings: Settings) -> TrivyOperatorArgs:
    scanning = settings.scanning
    return {
        "severities": severities_at_or_above(scanning.severity_threshold),
        "ignore_unfixed": scanning.ignore_unfixed,
        "scanners": scanning.scanners.model_dump(),
        "excluded_namespaces": list(scanning.excluded_namespaces),
        "compliance_specs": list(scanning.compliance_specs),
        "compliance_cron": scanning.compliance_cron,
        "scan_jobs_concurrent_limit": scanning.scan_jobs_concurrent_limit,
        "scan_job_timeout": scanning.scan_job_timeout,
        "scan_job_resources": scanning.scan_job_resources.model_dump(),
        "report_ttl": scanning.report_ttl,
    }


def runtime_args(settings: Settings) -> FalcoArgs:
    runtime = settings.runtime
    es = runtime.elasticsearch
    return {
        "environment": settings.environment,
        "minimum_priority": runtime.minimum_priority,
        "alert_minimum_priority": runtime.alert_minimum_priority,
        "least_privileged": runtime.least_privileged,
        "trusted_namespaces": list(runtime.trusted_namespaces),
        "allowed_outbound_cidrs": list(runtime.allowed_outbound_cidrs),
        "allowed_outbound_hosts": list(runtime.allowed_outbound_hosts),
        "secret_reader_processes": list(runtime.secret_reader_processes),
        "secret_paths": list(runtime.secret_paths),
        "sidekick_replicas": runtime.sidekick_replicas,
        "elasticsearch": {
            "hostport": es.hostport,
            "index": es.index,
            "username": es.username,
            "password": pulumi.Output.secret(settings.secret(es.password_secret).reveal()),
            "ca_secret_name": es.ca_secret_name,
            "minimum_priority": es.minimum_priority,
        }
        if es.enabled
        else None,
        "protect_data": settings.is_prod,
    }


def logging_args(settings: Settings) -> SecurityLoggingArgs:
    names = settings.logging
    secrets = {"setup": names.setup_password, "shipper": names.shipper_password, "falcosidekick": names.falcosidekick_password}
    passwords = {key: pulumi.Output.secret(settings.secret(name).reveal()) for key, name in secrets.items()}
    args = logging_args_from(settings.logging, settings.environment, passwords, settings.mesh.trust_domain)
    es = settings.runtime.elasticsearch
    if settings.runtime.enabled and es.enabled:
        # The public HTTP CA is copied to the Secret falcosidekick mounts (components/logging_ca.py).
        args["ca_target_namespace"] = FALCO_NAMESPACE
        args["ca_target_secret"] = es.ca_secret_name
    return args


def logging_args_from(logging: LoggingSettings, environment: str, passwords: dict, trust_domain: str) -> SecurityLoggingArgs:
    return {
        "environment": environment,
        "elasticsearch_version": logging.elasticsearch_version,
        "node_count": logging.node_count,
        "zone_awareness": logging.zone_awareness,
        "storage_class": logging.storage_class,
        "storage_size": logging.storage_size,
        "keep_volumes": logging.keep_volumes,
        "retention_days": logging.retention_days,
        "es_cpu": logging.es_cpu,
        "es_cpu_limit": logging.es_cpu_limit,
        "es_memory": logging.es_memory,
        "kibana_count": logging.kibana_count,
        "allow_mmap": logging.allow_mmap,
        "protect": environment == "prod",
        "passwords": passwords,
        "trust_domain": trust_domain,
        "kibana_host": logging.kibana_host,
        "kibana_allowed_cidrs": list(logging.kibana_allowed_cidrs),
    }


def _monitoring_secret(settings: Settings, name: str | None):
    return None if name is None else pulumi.Output.secret(settings.secret(name).reveal())


def monitoring_args(settings: Settings) -> SecurityMonitoringArgs:
    mon = settings.monitoring
    receivers: list[ReceiverArgs] = [
        {
            "name": r.name,
            "type": r.type,
            "severities": list(r.severities),
            "url": _monitoring_secret(settings, r.url_secret),
            "to": list(r.to),
            "sender": r.sender,
            "smarthost": r.smarthost,
            "auth_username": r.auth_username,
            "auth_password": _monitoring_secret(settings, r.auth_password_secret),
            "require_tls": r.require_tls,
            "send_resolved": r.send_resolved,
        }
        for r in mon.receivers
    ]
    return {
        "environment": settings.environment,
        "grafana_admin_password": _monitoring_secret(settings, mon.grafana_admin_password_secret),
        "retention": mon.retention,
        "prometheus_replicas": mon.prometheus_replicas,
        "alertmanager_replicas": mon.alertmanager_replicas,
        "storage_size": mon.storage_size,
        "storage_class": mon.storage_class,
        "receivers": receivers,
        "default_receiver": mon.default_receiver,
        "mtls_strict": settings.mesh.mtls_mode == "STRICT",
        "scrape_namespaces": [ns for team in settings.teams for ns in team.namespaces],
        "runbook_base_url": mon.runbook_base_url,
        "protect": settings.is_prod,
    }


def platform_args(settings: Settings, stack: str) -> PlatformArgs:
    args: PlatformArgs = {"environment": settings.environment, "teams": team_args(settings), "mesh": mesh_args(settings)}
    args["admission"] = admission_args(settings)
    args["data_security"] = data_security_args(settings)
    args["logging"] = logging_args(settings)
    args["monitoring"] = monitoring_args(settings)
    if settings.scanning.enabled:
        args["scanning"] = scanning_args(settings)
    if settings.runtime.enabled:
        args["runtime"] = runtime_args(settings)
    return args


def rrsa_accounts(settings: Settings) -> dict[tuple[str, str], str]:
    """(namespace, serviceAccount) -> RAM role name, for every account that reads a secret or uses a key."""
    accounts = {tuple(c.split("/")) for e in settings.secrets.entries for c in e.consumers} | {
        tuple(a.split("/")) for a in settings.kms.key_users
    }
    if not settings.cluster.rrsa.enabled:
        return {}
    return {(ns, sa): role_name(settings.environment, ns, sa) for ns, sa in sorted(accounts)}


def secret_data(settings: Settings, entry) -> pulumi.Output[str]:
    value = settings.secret(entry.value).reveal()
    if entry.type == "Rds":
        value = json.dumps({"Accounts": [{"AccountName": entry.account_name, "AccountPassword": value}]})
    return pulumi.Output.secret(value)


def data_security_args(settings: Settings) -> DataSecurityArgs:
    env, kms, secrets, cluster = settings.environment, settings.kms, settings.secrets, settings.cluster
    tags = {"managed-by": "secstack", "environment": env}
    consumers = []
    for (ns, sa), name in rrsa_accounts(settings).items():
        account = f"{ns}/{sa}"
        consumers.append({
            "namespace": ns,
            "service_account": sa,
            "role_name": name,
            "secrets": [e.name for e in secrets.entries if account in e.consumers],
            "key_purposes": list(kms.key_users.get(account, [])),
        })
    managed = cluster.managed
    return {
        "environment": env,
        "region": cluster.region,
        "protect": settings.is_prod,
        "tags": tags,
        "kms": {
            "environment": env,
            "purposes": list(kms.purposes),
            "key_spec": kms.key_spec,
            "automatic_rotation": kms.automatic_rotation,
            "rotation_interval_days": kms.rotation_interval_days,
            "pending_window_in_days": kms.pending_window_in_days,
            "deletion_protection": kms.deletion_protection,
            "protect": settings.is_prod,
            "tags": tags,
            "dkms_instance_id": kms.dkms_instance_id,
            "protection_level": kms.protection_level,
            "account_id": kms.account_id,
        },
        "secrets": {
            "recovery_window_in_days": secrets.recovery_window_in_days,
            "polling_interval_seconds": secrets.polling_interval_seconds,
            "controller_role_name": role_name(env, "secrets-system", "ack-secret-manager"),
            "entries": [
                {
                    "name": e.name,
                    "secret_name": f"secstack/{env}/{e.name}",
                    "data": secret_data(settings, e),
                    "type": e.type,
                    "description": e.description,
                    "version_id": e.version_id,
                    "consumers": [tuple(c.split("/")) for c in e.consumers],
                    "secret_key": e.secret_key,
                    "extended_config": dict(e.extended_config) or None,
                    "rotation_interval_days": e.rotation_interval_days,
                }
                for e in secrets.entries
            ],
        },
        "consumers": consumers,
        "oidc_issuer_url": str(cluster.rrsa.oidc_issuer_url) if cluster.rrsa.oidc_issuer_url else None,
        "oidc_provider_arn": cluster.rrsa.oidc_provider_arn,
        "managed_cluster": {
            "name": cluster.name,
            "environment": env,
            "kubernetes_version": cluster.kubernetes_version,
            "cluster_spec": managed.cluster_spec,
            "vswitch_ids": list(managed.vswitch_ids),
            "pod_vswitch_ids": list(managed.pod_vswitch_ids),
            "pod_cidr": managed.pod_cidr,
            "service_cidr": managed.service_cidr,
            "api_server_public": managed.api_server_public,
            "enable_rrsa": cluster.rrsa.enabled,
            "protect": settings.is_prod,
            "tags": tags,
        }
        if managed
        else None,
    }
