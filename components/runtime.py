"""Falco: runtime detection with the modern eBPF driver, secstack's own rules for the app threats, and
Falcosidekick forwarding events to Alertmanager and Elasticsearch. Metrics of both are scraped by Prometheus."""
from __future__ import annotations

from typing import Any, NotRequired, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components import falco_rules
from components.charts import FALCO
from components.common import child, helm_release, meta

NAMESPACE = "falco"
RELEASE = "falco"
# The kube-prometheus-stack Alertmanager Service (monitoring area); Alertmanager >= 0.27 only serves API v2.
ALERTMANAGER_URL = "http://kube-prometheus-stack-alertmanager.monitoring:9093"
ALERTMANAGER_ENDPOINT = "/api/v2/alerts"
# Services the charts create (monitoring targets): Falco's metrics Service and Falcosidekick's Service.
FALCO_METRICS_SERVICE = f"{RELEASE}-metrics"  # port "metrics" 8765, label type=falco-metrics
FALCO_METRICS_PORT = 8765
SIDEKICK_SERVICE = f"{RELEASE}-falcosidekick"  # port "http" 2801, /metrics on the same port
SIDEKICK_PORT = 2801
FALCO_METRICS_LABELS = {"app.kubernetes.io/name": "falco", "app.kubernetes.io/instance": RELEASE, "type": "falco-metrics"}
SIDEKICK_LABELS = {"app.kubernetes.io/name": "falcosidekick", "app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "core"}
ES_CREDENTIALS_SECRET = "falcosidekick-elasticsearch"
ES_CA_MOUNT = "/etc/secstack/elasticsearch-ca"
SIDEKICK_UID = 1234  # the uid the falcosidekick image runs as


class ElasticsearchOutputArgs(TypedDict):
    hostport: str
    index: str
    username: str
    password: pulumi.Input[str]  # a Pulumi secret
    ca_secret_name: str
    minimum_priority: str


class FalcoArgs(TypedDict):
    environment: str
    minimum_priority: str
    alert_minimum_priority: str
    least_privileged: bool
    trusted_namespaces: list[str]
    allowed_outbound_cidrs: list[str]
    allowed_outbound_hosts: list[str]
    secret_reader_processes: list[str]
    secret_paths: list[str]
    sidekick_replicas: int
    alertmanager_url: NotRequired[str]
    elasticsearch: NotRequired[Optional[ElasticsearchOutputArgs]]
    protect_data: NotRequired[bool]


def rules_yaml(args: FalcoArgs) -> str:
    return falco_rules.render(
        trusted_namespaces=args["trusted_namespaces"],
        allowed_outbound_cidrs=args["allowed_outbound_cidrs"],
        allowed_outbound_hosts=args["allowed_outbound_hosts"],
        secret_reader_processes=args["secret_reader_processes"],
        secret_paths=args["secret_paths"],
    )


def sidekick_values(args: FalcoArgs) -> dict[str, Any]:
    es = args.get("elasticsearch")
    config: dict[str, Any] = {
        "customfields": f"environment:{args['environment']}",
        "alertmanager": {
            "hostport": args.get("alertmanager_url", ALERTMANAGER_URL),
            "endpoint": ALERTMANAGER_ENDPOINT,
            "minimumpriority": args["alert_minimum_priority"],
            "extralabels": f"source:falco,environment:{args['environment']}",
            "checkcert": True,
        },
    }
    values: dict[str, Any] = {
        "enabled": True,
        "replicaCount": args["sidekick_replicas"],
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": SIDEKICK_UID,
            "runAsGroup": SIDEKICK_UID,
            "fsGroup": SIDEKICK_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "serviceMonitor": {"enabled": False},  # scraped by the monitoring area's ServiceMonitor (SIDEKICK_LABELS)
        "webui": {"enabled": False},
        "config": config,
    }
    if es:
        # Credentials come from a Kubernetes Secret as env vars (falcosidekick reads ELASTICSEARCH_USERNAME/PASSWORD);
        # `env` wins over the chart's envFrom Secret, so the Helm values never hold them.
        config["extraEnv"] = [
            {"name": "ELASTICSEARCH_USERNAME", "valueFrom": {"secretKeyRef": {"name": ES_CREDENTIALS_SECRET, "key": "username"}}},
            {"name": "ELASTICSEARCH_PASSWORD", "valueFrom": {"secretKeyRef": {"name": ES_CREDENTIALS_SECRET, "key": "password"}}},
        ]
        config["tlsclient"] = {"cacertfile": f"{ES_CA_MOUNT}/ca.crt"}
        config["elasticsearch"] = {
            "hostport": es["hostport"],
            "index": es["index"],
            "suffix": "none",  # one fixed target name: the data stream, not a per-day index
            # One POST /<stream>/_doc per event without an id: Elasticsearch treats it as op_type=create, the only
            # write a data stream and the writer role's create_doc privilege accept.
            "batching": {"enabled": False},
            "minimumpriority": es["minimum_priority"],
            "checkcert": True,
        }
        # optional: without the CA the Elasticsearch output fails closed (certificate not trusted) while
        # Alertmanager forwarding keeps working.
        values["extraVolumes"] = [
            {"name": "elasticsearch-ca", "secret": {"secretName": es["ca_secret_name"], "optional": True, "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
        ]
        values["extraVolumeMounts"] = [{"name": "elasticsearch-ca", "mountPath": ES_CA_MOUNT, "readOnly": True}]
    return values


def falco_values(args: FalcoArgs) -> dict[str, Any]:
    return {
        "driver": {"kind": "modern_ebpf", "modernEbpf": {"leastPrivileged": args["least_privileged"]}},
        # The container plugin supplies k8s.ns.name/k8s.pod.name; the k8s-metacollector is not needed.
        "collectors": {"kubernetes": {"enabled": False}},
        # A security agent runs on every node, tainted ones included.
        "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
        "metrics": {"enabled": True, "outputRule": False},
        # The monitoring area's ServiceMonitors scrape FALCO_METRICS_LABELS and SIDEKICK_LABELS; chart ones would
        # scrape every target twice and double every rate.
        "serviceMonitor": {"create": False},
        "customRules": {falco_rules.RULES_FILE: rules_yaml(args)},
        # Rules change only through this pinned stack, never by a weekly pull from the internet.
        "falcoctl": {"artifact": {"follow": {"enabled": False}}},
        "falcosidekick": sidekick_values(args),
        "falco": {
            "priority": args["minimum_priority"],
            "json_output": True,
            "json_include_output_property": True,
            "json_include_tags_property": True,
            "buffered_outputs": False,
            "syslog_output": {"enabled": False},
            "log_syslog": False,
            "stdout_output": {"enabled": True},
        },
    }


class Falco(pulumi.ComponentResource):
    """Runtime detection with the modern eBPF driver, secstack's own rules for the app threats, and Falcosidekick forwarding events to Alertmanager and Elasticsearch. Metrics of both are scraped by Prometheus."""

    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: FalcoArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:runtime:Falco", name, None, opts)
        protect = bool(args.get("protect_data", False))
        namespace = k8s.core.v1.Namespace(
            NAMESPACE,
            metadata=meta(
                NAMESPACE,
                labels={
                    # eBPF needs BPF/PERFMON/SYS_RESOURCE/SYS_PTRACE and read-only hostPath mounts of /proc, /etc,
                    # /usr, /boot and the container runtime socket: only the privileged level admits them.
                    "pod-security.kubernetes.io/enforce": "privileged",
                    "pod-security.kubernetes.io/audit": "restricted",
                    "istio-injection": "disabled",
                    "secstack.io/system": "true",
                },
            ),
            opts=child(self),
        )
        ready: list[pulumi.Resource] = [namespace]
        es = args.get("elasticsearch")
        if es:
            ready.append(
                k8s.core.v1.Secret(
                    ES_CREDENTIALS_SECRET,
                    metadata=meta(ES_CREDENTIALS_SECRET, NAMESPACE),
                    type="Opaque",
                    string_data={"username": es["username"], "password": pulumi.Output.secret(es["password"])},
                    opts=child(self, [namespace], protect=protect, retain_on_delete=protect),
                )
            )
        self._sidekick_ingress(namespace)
        self.release = helm_release(RELEASE, FALCO, NAMESPACE, falco_values(args), child(self, ready))
        self.namespace = pulumi.Output.from_input(NAMESPACE)
        self.register_outputs({"namespace": self.namespace, "release": self.release.name})

    def _sidekick_ingress(self, namespace: pulumi.Resource) -> None:
        """Only Falco may post events to Falcosidekick; only Prometheus (monitoring) may scrape it."""
        k8s.networking.v1.NetworkPolicy(
            "falcosidekick-ingress",
            metadata=meta("falcosidekick-ingress", NAMESPACE),
            spec={
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "falcosidekick", "app.kubernetes.io/instance": RELEASE}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "falco", "app.kubernetes.io/instance": RELEASE}}},
                            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
                        ],
                        "ports": [{"port": SIDEKICK_PORT, "protocol": "TCP"}],
                    }
                ],
            },
            opts=child(self, [namespace]),
        )
