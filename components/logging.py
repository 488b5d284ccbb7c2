"""SecurityLogging: Elasticsearch, Kibana and Filebeat on Elastic Cloud on Kubernetes (ECK), keeping the security
logs (containers, mesh access, admission, runtime) encrypted, authenticated and for as long as settings say."""
from __future__ import annotations

from typing import NotRequired, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components import logging_config as cfg
from components.charts import ECK_OPERATOR
from components.common import child, custom_resource, helm_release, meta
from components.logging_ca import ElasticsearchCaDeliveryArgs
from components.logging_network import network_policies

ES_API = "elasticsearch.k8s.elastic.co/v1"
KIBANA_API = "kibana.k8s.elastic.co/v1"
BEAT_API = "beat.k8s.elastic.co/v1beta1"
TELEMETRY_API = "telemetry.istio.io/v1"
NETWORKING_API = "networking.istio.io/v1"
SECURITY_API = "security.istio.io/v1"
CURL_IMAGE = "curlimages/curl:8.11.1"
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
}
RUNTIME_DEFAULT = {"seccompProfile": {"type": "RuntimeDefault"}}
# What the kubelet would automount, made explicit (and with a one-hour token) for the one pod that reads the API.
API_TOKEN_SOURCES = [
    {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
]


class SecurityLoggingArgs(TypedDict):
    environment: str
    elasticsearch_version: str
    node_count: int
    zone_awareness: bool
    storage_class: str
    storage_size: str
    keep_volumes: bool  # volumeClaimDeletePolicy DeleteOnScaledownOnly
    retention_days: int
    es_cpu: str
    es_cpu_limit: str
    es_memory: str
    kibana_count: int
    allow_mmap: bool
    protect: bool  # production data: protect + retain the cluster, its namespace and the operator
    passwords: dict[str, pulumi.Input[str]]  # cfg.USERS key -> secret password
    trust_domain: NotRequired[str]
    kibana_host: NotRequired[Optional[str]]
    kibana_allowed_cidrs: NotRequired[list[str]]
    # Where falcosidekick mounts a copy of the public HTTP CA (Falco's namespace and caSecretName); None: no copy.
    ca_target_namespace: NotRequired[Optional[str]]
    ca_target_secret: NotRequired[Optional[str]]


def _resources(cpu: str, cpu_limit: str, memory: str) -> dict:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory}}


class SecurityLogging(pulumi.ComponentResource):
    """Elasticsearch, Kibana and Filebeat on Elastic Cloud on Kubernetes (ECK), keeping the security logs (containers, mesh access, admission, runtime) encrypted, authenticated and for as long as settings say."""

    elasticsearch_url: pulumi.Output[str]

    def __init__(self, name: str, args: SecurityLoggingArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:logging:SecurityLogging", name, None, opts)
        keep = {"protect": True, "retain_on_delete": True} if args["protect"] else {}
        operator_ns = k8s.core.v1.Namespace(
            cfg.OPERATOR_NAMESPACE,
            metadata=meta(cfg.OPERATOR_NAMESPACE, labels={"pod-security.kubernetes.io/enforce": "restricted"}),
            opts=child(self),
        )
        namespace = k8s.core.v1.Namespace(
            cfg.NAMESPACE,
            metadata=meta(
                cfg.NAMESPACE,
                labels={
                    # Filebeat reads the nodes' log files through hostPath (see docs/logging.md); Pod Security
                    # Admission cannot exempt one workload, so the namespace admits it and Gatekeeper enforces the
                    # restricted rules on everything else here, with a written exemption for the shipper only.
                    "pod-security.kubernetes.io/enforce": "privileged",
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/audit": "restricted",
                },
            ),
            # Deleting the namespace would delete the claims whatever ECK's claim policy says.
            opts=child(self, **keep),
        )
        operator = helm_release("elastic-operator", ECK_OPERATOR, cfg.OPERATOR_NAMESPACE, operator_values(), child(self, [operator_ns], **keep))
        in_ns = [namespace, operator]

        users = self._users(args, child(self, [namespace]))
        es = custom_resource(
            "security-logs-elasticsearch", ES_API, "Elasticsearch", meta(cfg.ES_NAME, cfg.NAMESPACE),
            elasticsearch_spec(args), child(self, [*in_ns, *users], **keep),
        )
        kibana = custom_resource(
            "security-logs-kibana", KIBANA_API, "Kibana", meta(cfg.ES_NAME, cfg.NAMESPACE),
            kibana_spec(args), child(self, [es]),
        )
        shipper = self._shipper(args, es)
        lifecycle = self._lifecycle(args, es)
        network_policies(child(self, [namespace]))
        self._mesh(args, kibana)
        self.elasticsearch_url = pulumi.Output.from_input(cfg.ES_URL)
        # The copy writes into Falco's namespace, which exists only once Falco is built: SecurityPlatform builds
        # components.logging_ca.ElasticsearchCaDelivery from these args after Falco (docs/logging.md).
        self.ca_delivery = ca_delivery_args(args)
        self.register_outputs({
            "elasticsearchUrl": self.elasticsearch_url,
            "caSecret": cfg.ES_CA_SECRET,
            "retentionDays": args["retention_days"],
            "streams": [s.name for s in cfg.STREAMS],
            "shipper": shipper.id,
            "lifecycleJob": lifecycle.id,
        })

    def _users(self, args: SecurityLoggingArgs, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        out = [k8s.core.v1.Secret(
            "logging-es-roles", metadata=meta("secstack-es-roles", cfg.NAMESPACE),
            string_data={"roles.yml": cfg.roles_yaml()}, opts=opts,
        )]
        for key, (secret, username, role) in cfg.USERS.items():
            out.append(k8s.core.v1.Secret(
                f"logging-user-{key}", metadata=meta(secret, cfg.NAMESPACE), type="kubernetes.io/basic-auth",
                string_data={"username": username, "password": pulumi.Output.secret(args["passwords"][key]), "roles": role},
                opts=opts,
            ))
        return out

    def _shipper(self, args: SecurityLoggingArgs, es: pulumi.Resource) -> pulumi.Resource:
        account = k8s.core.v1.ServiceAccount(
            "logging-shipper", metadata=meta(cfg.SHIPPER_NAME, cfg.NAMESPACE), automount_service_account_token=False, opts=child(self, [es]),
        )
        # add_kubernetes_metadata reads pods, namespaces and nodes; nothing else.
        role = k8s.rbac.v1.ClusterRole(
            "logging-shipper", metadata=meta(f"secstack-{cfg.SHIPPER_NAME}"),
            rules=[{"apiGroups": [""], "resources": ["pods", "namespaces", "nodes"], "verbs": ["get", "list", "watch"]}],
            opts=child(self),
        )
        k8s.rbac.v1.ClusterRoleBinding(
            "logging-shipper", metadata=meta(f"secstack-{cfg.SHIPPER_NAME}"),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"secstack-{cfg.SHIPPER_NAME}"},
            subjects=[{"kind": "ServiceAccount", "name": cfg.SHIPPER_NAME, "namespace": cfg.NAMESPACE}],
            opts=child(self, [role, account]),
        )
        return custom_resource(
            "security-logs-shipper", BEAT_API, "Beat", meta(cfg.SHIPPER_NAME, cfg.NAMESPACE),
            beat_spec(args), child(self, [es, account]),
        )

    def _lifecycle(self, args: SecurityLoggingArgs, es: pulumi.Resource) -> pulumi.Resource:
        files = cfg.lifecycle_files(args["retention_days"], replicas_for(args["node_count"]))
        digest = cfg.checksum(files)
        config = k8s.core.v1.ConfigMap(
            "logging-lifecycle", metadata=meta("secstack-log-lifecycle", cfg.NAMESPACE), data=files, opts=child(self, [es]),
        )
        _, username, _ = cfg.USERS["setup"]
        netrc = pulumi.Output.secret(args["passwords"]["setup"]).apply(
            lambda password: f"machine {cfg.ES_HOST} login {username} password {password}\n"
        )
        auth = k8s.core.v1.Secret(
            "logging-lifecycle-netrc", metadata=meta("secstack-log-lifecycle-auth", cfg.NAMESPACE),
            string_data={"netrc": netrc}, opts=child(self, [es]),
        )
        # The digest in the name replaces the Job (and so re-applies the policy) whenever the retention changes.
        return k8s.batch.v1.Job(
            "logging-lifecycle", metadata=meta(f"log-lifecycle-{digest}", cfg.NAMESPACE),
            spec=lifecycle_job_spec(digest),
            # Pulumi waits for the Job; a new cluster takes minutes to turn yellow before the Job can succeed.
            opts=child(self, [config, auth, es], custom_timeouts=pulumi.CustomTimeouts(create="30m", update="30m")),
        )

    def _mesh(self, args: SecurityLoggingArgs, kibana: pulumi.Resource) -> None:
        # Access logs for every proxy in the mesh, in the JSON encoding meshConfig sets (components/mesh.py).
        custom_resource(
            "mesh-access-logging", TELEMETRY_API, "Telemetry", meta("mesh-access-logging", "istio-system"),
            {"accessLogging": [{"providers": [{"name": "envoy"}]}]}, child(self),
        )
        trust_domain = args.get("trust_domain", "cluster.local")
        gateway_principal = f"{trust_domain}/ns/istio-ingress/sa/istio-ingressgateway"
        # Kibana runs with a sidecar: only the ingress gateway may open it (an ALLOW policy denies everyone else).
        custom_resource(
            "kibana-allow-gateway", SECURITY_API, "AuthorizationPolicy", meta("kibana-allow-gateway", cfg.NAMESPACE),
            {
                "selector": {"matchLabels": {"kibana.k8s.elastic.co/name": cfg.ES_NAME}},
                "action": "ALLOW",
                "rules": [{"from": [{"source": {"principals": [gateway_principal]}}], "to": [{"operation": {"ports": ["5601"]}}]}],
            },
            child(self, [kibana]),
        )
        host = args.get("kibana_host")
        if host:
            for name, api, kind, namespace, spec in kibana_route(host, args.get("kibana_allowed_cidrs") or []):
                custom_resource(f"{name}-{kind.lower()}", api, kind, meta(name, namespace), spec, child(self, [kibana]))


def ca_delivery_args(args: SecurityLoggingArgs) -> Optional[ElasticsearchCaDeliveryArgs]:
    namespace, secret = args.get("ca_target_namespace"), args.get("ca_target_secret")
    if not namespace or not secret:
        return None
    return {"target_namespace": namespace, "target_secret": secret}


def replicas_for(node_count: int) -> int:
    return 0 if node_count == 1 else 1


def operator_values() -> dict:
    return {
        "installCRDs": True,
        "managedNamespaces": [cfg.NAMESPACE],  # the operator watches only the logging namespace
        "telemetry": {"disabled": True},  # no usage reports sent out of the cluster
        "global": {"createOperatorNamespace": False},
        "podSecurityContext": {"runAsNonRoot": True, **RUNTIME_DEFAULT},
        "securityContext": RESTRICTED_CONTAINER,
        "config": {"validateStorageClass": True, "setDefaultSecurityContext": "true"},
        "resources": _resources("100m", "1", "512Mi"),
    }


def elasticsearch_spec(args: SecurityLoggingArgs) -> dict:
    count = args["node_count"]
    node_set: dict = {
        "name": "default",
        "count": count,
        "config": {
            "node.roles": ["master", "data", "ingest"],
            "node.store.allow_mmap": args["allow_mmap"],
            "ingest.geoip.downloader.enabled": False,  # no download from the internet
        },
        "podTemplate": {
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": {"runAsNonRoot": True, "fsGroup": 1000, **RUNTIME_DEFAULT},
                "containers": [{
                    "name": "elasticsearch",
                    "resources": _resources(args["es_cpu"], args["es_cpu_limit"], args["es_memory"]),
                    "securityContext": RESTRICTED_CONTAINER,
                }],
            }
        },
        "volumeClaimTemplates": [{
            "metadata": {"name": "elasticsearch-data"},  # the claim name ECK expects for the data path
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": args["storage_class"],
                "resources": {"requests": {"storage": args["storage_size"]}},
            },
        }],
    }
    if args["zone_awareness"]:
        node_set["zoneAwareness"] = {"topologyKey": "topology.kubernetes.io/zone"}
    selector = {"matchLabels": {"elasticsearch.k8s.elastic.co/cluster-name": cfg.ES_NAME}}
    # One node: a drain may evict it (dev; the claim survives). Several: at most one node down at a time.
    budget = {"maxUnavailable": 1} if count == 1 else {"minAvailable": count - 1}
    return {
        "version": args["elasticsearch_version"],
        "volumeClaimDeletePolicy": "DeleteOnScaledownOnly" if args["keep_volumes"] else "DeleteOnScaledownAndClusterDeletion",
        "http": {"tls": {"selfSignedCertificate": {"subjectAltNames": [{"dns": cfg.ES_HOST}, {"dns": f"{cfg.ES_HOST}.cluster.local"}]}}},
        "auth": {
            "fileRealm": [{"secretName": secret} for secret, _, _ in cfg.USERS.values()],
            "roles": [{"secretName": "secstack-es-roles"}],
        },
        "podDisruptionBudget": {"spec": {**budget, "selector": selector}},
        "nodeSets": [node_set],
    }


def kibana_spec(args: SecurityLoggingArgs) -> dict:
    host = args.get("kibana_host")
    tls: dict = {"selfSignedCertificate": {"subjectAltNames": [{"dns": host}]}} if host else {"selfSignedCertificate": {}}
    config: dict = {"telemetry.optIn": False, "telemetry.allowChangingOptInStatus": False, "newsfeed.enabled": False}
    if host:
        config["server.publicBaseUrl"] = f"https://{host}"
    return {
        "version": args["elasticsearch_version"],
        "count": args["kibana_count"],
        "elasticsearchRef": {"name": cfg.ES_NAME},
        "config": config,
        "http": {"tls": tls, "service": {"spec": {"type": "ClusterIP"}}},
        "podTemplate": {
            "metadata": {"labels": {"sidecar.istio.io/inject": "true"}},
            "spec": {
                "automountServiceAccountToken": False,  # Kibana never calls the Kubernetes API
                "securityContext": {"runAsNonRoot": True, **RUNTIME_DEFAULT},
                "containers": [{
                    "name": "kibana",
                    "resources": _resources("500m", "1", "1Gi" if args["environment"] == "dev" else "2Gi"),
                    "securityContext": RESTRICTED_CONTAINER,
                }],
            },
        },
    }


def beat_spec(args: SecurityLoggingArgs) -> dict:
    host_path = lambda path, kind="Directory": {"path": path, "type": kind}  # noqa: E731
    return {
        "type": "filebeat",
        "version": args["elasticsearch_version"],
        "serviceAccountName": cfg.SHIPPER_NAME,
        "config": cfg.filebeat_config(),
        "daemonSet": {
            "podTemplate": {
                "spec": {
                    # add_kubernetes_metadata reads the API with an explicitly projected, expiring token.
                    "automountServiceAccountToken": False,
                    "securityContext": RUNTIME_DEFAULT,
                    "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [{
                        "name": "filebeat",
                        "env": [
                            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                            {"name": "SHIPPER_PASSWORD", "valueFrom": {"secretKeyRef": {"name": cfg.USERS["shipper"][0], "key": "password"}}},
                        ],
                        "resources": _resources("100m", "500m", "400Mi"),
                        # Root only to read the kubelet's 0640 root-owned log files; no capability, no privilege.
                        "securityContext": {**RESTRICTED_CONTAINER, "runAsNonRoot": False, "runAsUser": 0, "privileged": False},
                        "volumeMounts": [
                            {"name": "varlogcontainers", "mountPath": "/var/log/containers", "readOnly": True},
                            {"name": "varlogpods", "mountPath": "/var/log/pods", "readOnly": True},
                            {"name": "elasticsearch-ca", "mountPath": "/mnt/elasticsearch-ca", "readOnly": True},
                            {"name": "beat-data", "mountPath": "/usr/share/filebeat/data"},
                            {"name": "tmp", "mountPath": "/tmp"},
                            {"name": "api-token", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True},
                        ],
                    }],
                    "volumes": [
                        {"name": "varlogcontainers", "hostPath": host_path("/var/log/containers")},
                        {"name": "varlogpods", "hostPath": host_path("/var/log/pods")},
                        {"name": "elasticsearch-ca", "secret": {"secretName": cfg.ES_CA_SECRET, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                        # The registry (read offsets) survives restarts so no line is lost or shipped twice.
                        {"name": "beat-data", "hostPath": host_path("/var/lib/secstack/filebeat-data", "DirectoryOrCreate")},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                        {"name": "api-token", "projected": {"sources": API_TOKEN_SOURCES}},
                    ],
                }
            }
        },
    }


def lifecycle_job_spec(digest: str) -> dict:
    return {
        "backoffLimit": 20,
        "activeDeadlineSeconds": 3600,
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/name": "log-lifecycle", "secstack.io/config-digest": digest}},
            "spec": {
                "restartPolicy": "OnFailure",
                "automountServiceAccountToken": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 100, "runAsGroup": 101, **RUNTIME_DEFAULT},
                "containers": [{
                    "name": "apply",
                    "image": CURL_IMAGE,
                    "command": ["/bin/sh", "/config/apply.sh"],
                    "resources": _resources("50m", "200m", "64Mi"),
                    "securityContext": RESTRICTED_CONTAINER,
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/config", "readOnly": True},
                        {"name": "auth", "mountPath": "/mnt/auth", "readOnly": True},
                        {"name": "elasticsearch-ca", "mountPath": "/mnt/elasticsearch-ca", "readOnly": True},
                    ],
                }],
                "volumes": [
                    {"name": "config", "configMap": {"name": "secstack-log-lifecycle"}},
                    {"name": "auth", "secret": {"secretName": "secstack-log-lifecycle-auth"}},
                    {"name": "elasticsearch-ca", "secret": {"secretName": cfg.ES_CA_SECRET, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                ],
            },
        },
    }


def kibana_route(host: str, cidrs: list[str]) -> list[tuple[str, str, str, str, dict]]:
    """TLS passthrough on the ingress gateway: the browser's TLS ends at Kibana itself; only `cidrs` may connect."""
    selector = {"matchLabels": {"istio": "ingressgateway"}}
    return [
        ("kibana", NETWORKING_API, "Gateway", cfg.NAMESPACE, {
            "selector": {"istio": "ingressgateway"},
            "servers": [{"port": {"number": 443, "name": "tls-kibana", "protocol": "TLS"}, "hosts": [host], "tls": {"mode": "PASSTHROUGH"}}],
        }),
        ("kibana", NETWORKING_API, "VirtualService", cfg.NAMESPACE, {
            "hosts": [host],
            "gateways": [f"{cfg.NAMESPACE}/kibana"],
            "tls": [{
                "match": [{"port": 443, "sniHosts": [host]}],
                "route": [{"destination": {"host": f"{cfg.KIBANA_SERVICE}.{cfg.NAMESPACE}.svc.cluster.local", "port": {"number": 5601}}}],
            }],
        }),
        # In the root namespace so it binds the gateway pods wherever they run; DENY wins over the gateway's ALLOW.
        ("kibana-source-ranges", SECURITY_API, "AuthorizationPolicy", "istio-system", {
            "selector": selector,
            "action": "DENY",
            "rules": [{"from": [{"source": {"notRemoteIpBlocks": list(cidrs)}}], "when": [{"key": "connection.sni", "values": [host]}]}],
        }),
    ]
