"""What SecurityLogging writes into Elasticsearch and Filebeat: data streams, the lifecycle policy, roles, the
shipper's configuration. Plain data, no Pulumi, so tests read the same values the component declares."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import yaml

ES_NAME = "security-logs"
NAMESPACE = "logging"
OPERATOR_NAMESPACE = "elastic-system"
ES_HOST = f"{ES_NAME}-es-http.{NAMESPACE}.svc"
ES_URL = f"https://{ES_HOST}:9200"
ES_CA_SECRET = f"{ES_NAME}-es-http-certs-public"  # ECK-generated: the public CA of the self-signed HTTP certificate
KIBANA_SERVICE = f"{ES_NAME}-kb-http"
SHIPPER_NAME = f"{ES_NAME}-shipper"
LIFECYCLE_POLICY = "secstack-security-logs"
INDEX_TEMPLATE = "secstack-security-logs"


@dataclass(frozen=True)
class Stream:
    name: str  # data stream, `logs-<dataset>-<namespace>`
    what: str


CONTAINERS = Stream("logs-kubernetes.container-default", "stdout/stderr of every container, with pod metadata")
ISTIO_ACCESS = Stream("logs-istio.access-default", "Envoy access logs (JSON) of every sidecar and gateway")
GATEKEEPER = Stream("logs-gatekeeper.admission-default", "Gatekeeper webhook denials (logDenies) and audit results")
FALCO = Stream("logs-falco-default", "Falco runtime events, written by falcosidekick")
STREAMS = (CONTAINERS, ISTIO_ACCESS, GATEKEEPER, FALCO)
SHIPPED = (CONTAINERS, ISTIO_ACCESS, GATEKEEPER)  # by Filebeat; FALCO arrives from falcosidekick


def pattern(stream: Stream) -> str:
    return stream.name.rsplit("-", 1)[0] + "-*"


def rollover_age(retention_days: int) -> str:
    """About 30 backing indices per stream over the retention: few small shards, deletion at a fine grain."""
    return f"{max(1, retention_days // 30)}d"


def lifecycle_policy(retention_days: int) -> dict:
    """Delete a backing index `retention_days` after its rollover, so every document is kept at least that long
    (and at most one rollover period longer)."""
    return {
        "policy": {
            "_meta": {"managed_by": "secstack", "retention_days": retention_days},
            "phases": {
                "hot": {"min_age": "0ms", "actions": {"rollover": {"max_age": rollover_age(retention_days), "max_primary_shard_size": "50gb"}}},
                "delete": {"min_age": f"{retention_days}d", "actions": {"delete": {}}},
            },
        }
    }


def index_template(replicas: int) -> dict:
    """Above the built-in `logs` template (priority 100), so our lifecycle policy, not the built-in one, applies."""
    return {
        "index_patterns": [pattern(s) for s in STREAMS],
        "data_stream": {},
        "priority": 300,
        "composed_of": ["logs@mappings", "ecs@mappings"],
        "ignore_missing_component_templates": ["logs@mappings", "ecs@mappings"],
        "template": {"settings": {"index.lifecycle.name": LIFECYCLE_POLICY, "index.number_of_replicas": replicas}},
        "_meta": {"managed_by": "secstack", "streams": [s.name for s in STREAMS]},
    }


def _writer(streams: tuple[Stream, ...]) -> dict:
    # create_doc can append but never overwrite or delete; auto_configure lets the first write create the stream.
    return {"cluster": ["monitor"], "indices": [{"names": [pattern(s) for s in streams], "privileges": ["create_doc", "auto_configure"]}]}


ROLES = {
    "secstack_lifecycle_admin": {"cluster": ["monitor", "manage_ilm", "manage_index_templates"]},
    "secstack_log_shipper": _writer(SHIPPED),
    "secstack_falco_writer": _writer((FALCO,)),
}

# ECK file-realm users: (secret name, username, role). Passwords come from Pulumi secrets.
USERS = {
    "setup": ("secstack-setup-user", "secstack-setup", "secstack_lifecycle_admin"),
    "shipper": ("secstack-shipper-user", "secstack-shipper", "secstack_log_shipper"),
    "falcosidekick": ("secstack-falcosidekick-user", "falcosidekick", "secstack_falco_writer"),
}


def roles_yaml() -> str:
    return yaml.safe_dump(ROLES, sort_keys=True)


def filebeat_config() -> dict:
    is_proxy = {"equals": {"kubernetes.container.name": "istio-proxy"}}
    in_gatekeeper = {"equals": {"kubernetes.namespace": "gatekeeper-system"}}
    return {
        "filebeat.inputs": [
            {
                "type": "filestream",
                "id": "kubernetes-containers",
                "paths": ["/var/log/containers/*.log"],
                "prospector.scanner.symlinks": True,
                "parsers": [{"container": {"stream": "all", "format": "auto"}}],
                "processors": [
                    {"add_kubernetes_metadata": {"host": "${NODE_NAME}", "matchers": [{"logs_path": {"logs_path": "/var/log/containers/"}}]}},
                ],
            }
        ],
        "processors": [
            # Istio writes access logs as JSON (meshConfig.accessLogEncoding); Gatekeeper logs JSON (zap).
            {"decode_json_fields": {"when": is_proxy, "fields": ["message"], "target": "istio", "add_error_key": True}},
            {"decode_json_fields": {"when": in_gatekeeper, "fields": ["message"], "target": "gatekeeper", "add_error_key": True}},
        ],
        "output.elasticsearch": {
            "hosts": [ES_URL],
            "username": USERS["shipper"][1],
            "password": "${SHIPPER_PASSWORD}",
            "ssl.certificate_authorities": ["/mnt/elasticsearch-ca/ca.crt"],
            "ssl.verification_mode": "full",
            "index": CONTAINERS.name,
            "indices": [
                # Envoy's own diagnostics are also JSON on istio-proxy's stdout; only access log lines carry response_code.
                {"index": ISTIO_ACCESS.name, "when": {"and": [is_proxy, {"has_fields": ["istio.response_code"]}]}},
                {"index": GATEKEEPER.name, "when": in_gatekeeper},
            ],
        },
        # The lifecycle Job owns the policy and the template; the shipper's role cannot change them anyway.
        "setup.ilm.enabled": False,
        "setup.template.enabled": False,
        "logging.json": True,
        "monitoring.enabled": False,
    }


def lifecycle_files(retention_days: int, replicas: int) -> dict[str, str]:
    return {
        "ilm-policy.json": json.dumps(lifecycle_policy(retention_days), indent=1, sort_keys=True),
        "index-template.json": json.dumps(index_template(replicas), indent=1, sort_keys=True),
        "apply.sh": APPLY_SCRIPT,
    }


def checksum(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:10]


APPLY_SCRIPT = f"""#!/bin/sh
# Puts the lifecycle policy and the index template; idempotent (PUT replaces), retried until the cluster answers.
set -eu
es() {{ curl --fail-with-body -sS --cacert /mnt/elasticsearch-ca/ca.crt --netrc-file /mnt/auth/netrc \\
  -H 'Content-Type: application/json' "$@"; }}
until es "{ES_URL}/_cluster/health?wait_for_status=yellow&timeout=30s" >/dev/null; do
  echo "waiting for {ES_HOST}"; sleep 10
done
es -X PUT "{ES_URL}/_ilm/policy/{LIFECYCLE_POLICY}" --data-binary @/config/ilm-policy.json
es -X PUT "{ES_URL}/_index_template/{INDEX_TEMPLATE}" --data-binary @/config/index-template.json
echo "lifecycle policy {LIFECYCLE_POLICY} and index template {INDEX_TEMPLATE} applied"
"""
