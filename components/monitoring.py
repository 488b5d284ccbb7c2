"""SecurityMonitoring: kube-prometheus-stack scraping the security components, with our alert rules, dashboards and
severity-based Alertmanager routing.

Alertmanager reads its whole configuration from a Secret we render (`useExistingSecret`), not from AlertmanagerConfig
CRs: the routing tree that `amtool config routes test` checks is then exactly the one Alertmanager runs (the operator
would add namespace matchers to CR routes and nest them under its own root), receiver URLs and SMTP passwords stay in
one Secret built from Pulumi secrets, and no namespace can add a route that diverts or silences security alerts.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, NotRequired, Optional, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.charts import KUBE_PROMETHEUS_STACK
from components.common import child, custom_resource, helm_release, meta

NAMESPACE = "monitoring"
RELEASE = "kube-prometheus-stack"  # the chart's fullname: services are kube-prometheus-stack-{prometheus,alertmanager}
MONITORING_API = "monitoring.coreos.com/v1"
ALERTMANAGER_SECRET = "alertmanager-secstack"
GRAFANA_SECRET = "grafana-admin"
ROUTING_LABEL = {"secstack.io/alertmanager-config": "managed"}
DASHBOARD_LABEL = {"grafana_dashboard": "1"}
SEVERITIES = ("critical", "warning", "info")
ENVOY_MERGED_METRICS_PORT = 15020
DASHBOARDS_DIR = Path(__file__).resolve().parent.parent / "dashboards"
ALERTS_DIR = DASHBOARDS_DIR / "alerts"
STRICT_ONLY_RULES = {"mesh-strict"}  # plaintext traffic is expected where the mesh is PERMISSIVE


class ReceiverArgs(TypedDict):
    name: str
    type: str  # webhook | dingtalk | email
    severities: list[str]
    url: NotRequired[Optional[pulumi.Input[str]]]  # secret
    to: NotRequired[list[str]]
    sender: NotRequired[Optional[str]]
    smarthost: NotRequired[Optional[str]]
    auth_username: NotRequired[Optional[str]]
    auth_password: NotRequired[Optional[pulumi.Input[str]]]  # secret
    require_tls: NotRequired[bool]
    send_resolved: NotRequired[bool]


class SecurityMonitoringArgs(TypedDict):
    environment: str
    grafana_admin_password: pulumi.Input[str]  # secret
    retention: str
    prometheus_replicas: int
    alertmanager_replicas: int
    storage_size: str
    storage_class: str
    receivers: list[ReceiverArgs]
    default_receiver: NotRequired[Optional[str]]
    mtls_strict: bool
    scrape_namespaces: list[str]  # mesh namespaces whose sidecars Prometheus may reach on 15020
    runbook_base_url: str
    protect: NotRequired[bool]


# ---------------------------------------------------------------------------------------------------------------
# Pure renderers (no Pulumi): the tests call these with plain values and feed the output to promtool and amtool.


def alertmanager_config(receivers: Sequence[Mapping[str, Any]], default_receiver: Optional[str] = None) -> dict:
    """alertmanager.yaml: security alerts (category=security) fan out by severity to every receiver taking that
    severity; other alerts go to the default receiver, or are dropped when there is none."""
    security_routes = []
    for severity in SEVERITIES:
        targets = [r for r in receivers if severity in r["severities"]]
        for i, receiver in enumerate(targets):
            route: dict[str, Any] = {"receiver": receiver["name"], "matchers": [f'severity="{severity}"']}
            if severity == "critical":
                route.update({"group_wait": "10s", "repeat_interval": "1h"})
            route["continue"] = i < len(targets) - 1
            security_routes.append(route)
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": default_receiver or "null",
            "group_by": ["alertname", "namespace"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "12h",
            "routes": [
                # kube-prometheus-stack's always-firing heartbeat and inhibitor are not notifications.
                {"receiver": "null", "matchers": ['alertname=~"Watchdog|InfoInhibitor"']},
                {"matchers": ['category="security"'], "repeat_interval": "4h", "routes": security_routes},
            ],
        },
        "inhibit_rules": [
            {"source_matchers": ['severity="critical"'], "target_matchers": ['severity=~"warning|info"'], "equal": ["alertname", "namespace"]},
            {"source_matchers": ['severity="warning"'], "target_matchers": ['severity="info"'], "equal": ["alertname", "namespace"]},
        ],
        "receivers": [{"name": "null"}, *(_receiver(r) for r in receivers)],
    }


def _receiver(r: Mapping[str, Any]) -> dict:
    send_resolved = bool(r.get("send_resolved", True))
    if r["type"] in ("webhook", "dingtalk"):
        return {"name": r["name"], "webhook_configs": [{"url": r["url"], "send_resolved": send_resolved}]}
    email: dict[str, Any] = {
        "to": ", ".join(r["to"]),
        "from": r["sender"],
        "smarthost": r["smarthost"],
        "require_tls": bool(r.get("require_tls", True)),
        "send_resolved": send_resolved,
    }
    if r.get("auth_username"):
        email.update({"auth_username": r["auth_username"], "auth_password": r["auth_password"]})
    return {"name": r["name"], "email_configs": [email]}


def rule_files(mtls_strict: bool) -> list[Path]:
    return [p for p in sorted(ALERTS_DIR.glob("*.yaml")) if mtls_strict or p.stem not in STRICT_ONLY_RULES]


def rule_groups(path: Path, runbook_base_url: str) -> list[dict]:
    """The groups of one rule file, with repository-relative runbook links made absolute."""
    groups = yaml.safe_load(path.read_text())["groups"]
    for group in groups:
        for rule in group["rules"]:
            annotations = rule.get("annotations") or {}
            link = annotations.get("runbook_url")
            if link and not link.startswith("https://"):
                annotations["runbook_url"] = f"{runbook_base_url.rstrip('/')}/{link}"
    return groups


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def _job(name: str) -> dict:
    """A fixed `job` label, so alert rules do not depend on the charts' service names."""
    return {"targetLabel": "job", "replacement": name, "action": "replace"}


def monitors() -> list[tuple[str, str, dict]]:
    """(kind, name, spec) of the ServiceMonitors and PodMonitors, with the labels and port names the charts use."""
    return [
        (
            "ServiceMonitor",
            "istiod",
            {
                "namespaceSelector": {"matchNames": ["istio-system"]},
                "selector": {"matchLabels": {"app": "istiod"}},
                "endpoints": [{"port": "http-monitoring", "interval": "30s", "relabelings": [_job("istiod")]}],
            },
        ),
        (
            "PodMonitor",
            "envoy-stats",
            {
                # Every injected pod carries this label; the merged (Envoy + agent + app) endpoint is on 15020, which
                # the sidecar does not declare, so the target is the declared Envoy port rewritten to 15020.
                "namespaceSelector": {"any": True},
                "selector": {"matchExpressions": [{"key": "security.istio.io/tlsMode", "operator": "Exists"}]},
                "podMetricsEndpoints": [
                    {
                        "path": "/stats/prometheus",
                        "interval": "30s",
                        "relabelings": [
                            {"sourceLabels": ["__meta_kubernetes_pod_container_name"], "regex": "istio-proxy", "action": "keep"},
                            {"sourceLabels": ["__meta_kubernetes_pod_container_port_name"], "regex": "http-envoy-prom", "action": "keep"},
                            {"sourceLabels": ["__meta_kubernetes_pod_ip"], "regex": "([^:]+)", "targetLabel": "__address__", "replacement": f"$1:{ENVOY_MERGED_METRICS_PORT}", "action": "replace"},
                            {"sourceLabels": ["__meta_kubernetes_pod_ip"], "regex": "(.+:.+)", "targetLabel": "__address__", "replacement": f"[$1]:{ENVOY_MERGED_METRICS_PORT}", "action": "replace"},
                            _job("envoy-stats"),
                        ],
                    }
                ],
            },
        ),
        (
            "PodMonitor",
            "gatekeeper",
            {
                "namespaceSelector": {"matchNames": ["gatekeeper-system"]},
                "selector": {"matchExpressions": [{"key": "control-plane", "operator": "In", "values": ["controller-manager", "audit-controller"]}]},
                "podMetricsEndpoints": [{"port": "metrics", "interval": "30s", "relabelings": [_job("gatekeeper")]}],
            },
        ),
        (
            "ServiceMonitor",
            "trivy-operator",
            {
                "namespaceSelector": {"matchNames": ["trivy-system"]},
                "selector": {"matchLabels": {"app.kubernetes.io/name": "trivy-operator", "app.kubernetes.io/instance": "trivy-operator"}},
                # The reports' own `namespace` label names the scanned workload's namespace: keep it.
                "endpoints": [{"port": "metrics", "interval": "60s", "honorLabels": True, "relabelings": [_job("trivy-operator")]}],
            },
        ),
        (
            "ServiceMonitor",
            "falco",
            {
                "namespaceSelector": {"matchNames": ["falco"]},
                "selector": {"matchLabels": {"app.kubernetes.io/name": "falco", "app.kubernetes.io/instance": "falco", "type": "falco-metrics"}},
                "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s", "honorLabels": True, "relabelings": [_job("falco")]}],
            },
        ),
        (
            "ServiceMonitor",
            "falcosidekick",
            {
                "namespaceSelector": {"matchNames": ["falco"]},
                "selector": {
                    "matchLabels": {
                        "app.kubernetes.io/name": "falcosidekick",
                        "app.kubernetes.io/instance": "falco",
                        "app.kubernetes.io/component": "core",
                    }
                },
                "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s", "relabelings": [_job("falcosidekick")]}],
            },
        ),
    ]


# Gatekeeper exports violations per enforcement action only; kube-state-metrics turns each constraint's
# status.totalViolations into secstack_gatekeeper_constraint_violations{constraint, enforcement_action, customresource_kind}.
CONSTRAINT_METRICS = {
    "kind": "CustomResourceStateMetrics",
    "spec": {
        "resources": [
            {
                "groupVersionKind": {"group": "constraints.gatekeeper.sh", "version": "v1beta1", "kind": "*"},
                "metricNamePrefix": "secstack_gatekeeper",
                "labelsFromPath": {"constraint": ["metadata", "name"], "enforcement_action": ["spec", "enforcementAction"]},
                "metrics": [
                    {
                        "name": "constraint_violations",
                        "help": "Violations of a Gatekeeper constraint found by the last audit (status.totalViolations)",
                        "each": {"type": "Gauge", "gauge": {"path": ["status", "totalViolations"]}},
                    }
                ],
            }
        ]
    },
}


def helm_values(args: SecurityMonitoringArgs) -> dict[str, Any]:
    prom_replicas, am_replicas = args["prometheus_replicas"], args["alertmanager_replicas"]
    every = {}
    for kind in ("rule", "serviceMonitor", "podMonitor", "probe", "scrapeConfig"):
        # Without this the chart only selects objects labelled with its own release name.
        every[f"{kind}SelectorNilUsesHelmValues"] = False
        every[f"{kind}Selector"] = {}
        every[f"{kind}NamespaceSelector"] = {}
    return {
        "fullnameOverride": RELEASE,
        "prometheus": {
            "prometheusSpec": {
                **every,
                "replicas": prom_replicas,
                "retention": args["retention"],
                "externalLabels": {"environment": args["environment"]},
                "enableAdminAPI": False,
                "podAntiAffinity": "hard" if prom_replicas > 1 else "soft",
                "storageSpec": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "storageClassName": args["storage_class"],
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": args["storage_size"]}},
                        }
                    }
                },
            }
        },
        "alertmanager": {
            "alertmanagerSpec": {
                "replicas": am_replicas,
                "podAntiAffinity": "hard" if am_replicas > 1 else "soft",
                "useExistingSecret": True,
                "configSecret": ALERTMANAGER_SECRET,
                # Routing is the Secret above; an AlertmanagerConfig is merged only with this label, in this namespace.
                "alertmanagerConfigSelector": {"matchLabels": dict(ROUTING_LABEL)},
            }
        },
        "grafana": {
            "enabled": True,
            "admin": {"existingSecret": GRAFANA_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
            "grafana.ini": {
                "auth.anonymous": {"enabled": False},
                "users": {"allow_sign_up": False, "allow_org_create": False},
                "security": {"disable_gravatar": True, "cookie_samesite": "strict", "allow_embedding": False},
                "analytics": {"reporting_enabled": False, "check_for_updates": False},
            },
            "sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard", "labelValue": "1", "searchNamespace": NAMESPACE}},
        },
        "kube-state-metrics": {
            "rbac": {"extraRules": [{"apiGroups": ["constraints.gatekeeper.sh"], "resources": ["*"], "verbs": ["list", "watch"]}]},
            "customResourceState": {"enabled": True, "config": CONSTRAINT_METRICS},
        },
    }


class SecurityMonitoring(pulumi.ComponentResource):
    """Kube-prometheus-stack scraping the security components, with our alert rules, dashboards and severity-based Alertmanager routing."""

    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: SecurityMonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:monitoring:SecurityMonitoring", name, None, opts)
        keep = {"protect": True, "retain_on_delete": True} if args.get("protect") else {}
        ns = k8s.core.v1.Namespace(
            NAMESPACE,
            metadata=meta(
                NAMESPACE,
                # node-exporter reads host metrics (hostNetwork, hostPID, hostPath): the namespace cannot enforce PSS.
                labels={"pod-security.kubernetes.io/enforce": "privileged", "pod-security.kubernetes.io/warn": "baseline", "secstack.io/system": "true"},
            ),
            opts=child(self),
        )
        grafana_secret = k8s.core.v1.Secret(
            "grafana-admin",
            metadata=meta(GRAFANA_SECRET, NAMESPACE),
            type="Opaque",
            string_data={"admin-user": "admin", "admin-password": pulumi.Output.secret(args["grafana_admin_password"])},
            opts=child(self, [ns], **keep),
        )
        am_secret = k8s.core.v1.Secret(
            "alertmanager-config",
            metadata=meta(ALERTMANAGER_SECRET, NAMESPACE),
            type="Opaque",
            string_data={"alertmanager.yaml": self._alertmanager_yaml(args)},
            opts=child(self, [ns], **keep),
        )
        release = helm_release(RELEASE, KUBE_PROMETHEUS_STACK, NAMESPACE, helm_values(args), child(self, [ns, grafana_secret, am_secret]))
        after = child(self, [release])
        for kind, monitor_name, spec in monitors():
            custom_resource(f"monitor-{monitor_name}", MONITORING_API, kind, meta(monitor_name, NAMESPACE), spec, after)
        for path in rule_files(args["mtls_strict"]):
            custom_resource(
                f"rules-{path.stem}",
                MONITORING_API,
                "PrometheusRule",
                meta(f"secstack-{path.stem}", NAMESPACE, {"secstack.io/rules": "security"}),
                {"groups": rule_groups(path, args["runbook_base_url"])},
                after,
            )
        for path in dashboard_files():
            k8s.core.v1.ConfigMap(
                f"dashboard-{path.stem}",
                metadata=meta(f"secstack-dashboard-{path.stem}", NAMESPACE, DASHBOARD_LABEL),
                data={f"secstack-{path.stem}.json": json.dumps(json.loads(path.read_text()), sort_keys=True)},
                opts=child(self, [ns]),
            )
        for team_ns in args["scrape_namespaces"]:
            # Team namespaces deny ingress by default; Prometheus may reach only the sidecars' metrics port.
            k8s.networking.v1.NetworkPolicy(
                f"{team_ns}-allow-prometheus-scrape",
                metadata=meta("allow-prometheus-scrape", team_ns),
                spec={
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [
                        {
                            "from": [
                                {
                                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
                                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                                }
                            ],
                            "ports": [{"protocol": "TCP", "port": ENVOY_MERGED_METRICS_PORT}],
                        }
                    ],
                },
                opts=child(self, [ns]),
            )
        self.namespace = pulumi.Output.from_input(NAMESPACE)
        self.register_outputs({"namespace": self.namespace, "release": release.name, "alertmanagerSecret": ALERTMANAGER_SECRET})

    @staticmethod
    def _alertmanager_yaml(args: SecurityMonitoringArgs) -> pulumi.Output[str]:
        secrets: dict[str, Any] = {}
        for r in args["receivers"]:
            for field in ("url", "auth_password"):
                if r.get(field) is not None:
                    secrets[f"{r['name']}/{field}"] = r[field]

        def render(values: Any) -> str:
            resolved = dict(values) if isinstance(values, dict) else {}
            plain = [{**r, **{f: resolved.get(f"{r['name']}/{f}") for f in ("url", "auth_password")}} for r in args["receivers"]]
            return yaml.safe_dump(alertmanager_config(plain, args.get("default_receiver")), sort_keys=False)

        rendered = pulumi.Output.all(**secrets).apply(render) if secrets else pulumi.Output.from_input(None).apply(render)
        return pulumi.Output.secret(rendered)
