"""ElasticsearchCaDelivery: copies only the public CA of ECK's self-signed HTTP certificate (`ca.crt` of
`logging/security-logs-es-http-certs-public`) into the Falco namespace, so falcosidekick can verify Elasticsearch.

A one-shot Job makes the first copy at install; an hourly CronJob keeps it current when ECK rotates the CA.
It reads one Secret in `logging` and patches one Secret in the target namespace, nothing else."""
from __future__ import annotations

from typing import Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components import logging_config as cfg
from components.common import child, meta

NAME = "secstack-es-ca-copy"
POD_LABELS = {"app.kubernetes.io/name": "es-ca-copy", "sidecar.istio.io/inject": "false"}
SCHEDULE = "17 * * * *"  # hourly: ECK renews the CA well before expiry (24h by default), so a copy is never late
# The same pinned image as the lifecycle Job (allowed in `logging` by the stack's written exemptions).
IMAGE = "curlimages/curl:8.11.1"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_SOURCES = [
    {"serviceAccountToken": {"path": "token", "expirationSeconds": 600}},  # the API minimum; a run takes seconds
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
]
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
}

# POSIX sh (busybox in the curl image). The token goes to curl on stdin (-K -), never on a command line. Only the
# `ca.crt` value of the source's `data` is extracted, checked to be a PEM certificate, and merge-patched into the
# target: the target's other keys and metadata stay as they are, and no `get` of the target is needed.
COPY_SCRIPT = r"""set -eu
api() {
  printf 'header = "Authorization: Bearer %s"\n' "$(cat "$SA_DIR/token")" |
    curl -sS --fail --max-time 30 --cacert "$SA_DIR/ca.crt" -K - "$@"
}
base="https://${KUBERNETES_SERVICE_HOST}:${KUBERNETES_SERVICE_PORT}/api/v1/namespaces"
source=$(api "$base/$SOURCE_NAMESPACE/secrets/$SOURCE_SECRET" | tr -d ' \n')
ca=$(printf '%s' "$source" | sed -n 's/.*"data":{[^}]*"ca\.crt":"\([A-Za-z0-9+\/=]*\)".*/\1/p')
[ -n "$ca" ] || { echo "no ca.crt in $SOURCE_NAMESPACE/$SOURCE_SECRET" >&2; exit 1; }
pem=$(printf '%s' "$ca" | base64 -d)
case "$pem" in
  *PRIVATE*) echo "refusing: $SOURCE_SECRET ca.crt holds a private key" >&2; exit 1 ;;
  "-----BEGIN CERTIFICATE-----"*) ;;
  *) echo "refusing: $SOURCE_SECRET ca.crt is not a PEM certificate" >&2; exit 1 ;;
esac
api -X PATCH -H 'Content-Type: application/merge-patch+json' -o /dev/null \
  --data-binary "{\"data\":{\"ca.crt\":\"$ca\"}}" "$base/$TARGET_NAMESPACE/secrets/$TARGET_SECRET"
echo "copied ca.crt from $SOURCE_NAMESPACE/$SOURCE_SECRET to $TARGET_NAMESPACE/$TARGET_SECRET"
"""


class ElasticsearchCaDeliveryArgs(TypedDict):
    target_namespace: str  # where falcosidekick runs
    target_secret: str  # the Secret falcosidekick mounts (key ca.crt)


def secret_rule(name: str, verbs: list[str]) -> dict:
    return {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [name], "verbs": verbs}


# `create` cannot be limited by resourceNames (the name is not known at authorization time), so it would allow
# creating any Secret in the target namespace. The target Secret is created empty by Pulumi instead, and the
# Job only patches it: no `create`, no `get`, no `update` of the target are granted.
SOURCE_VERBS = ["get"]
TARGET_VERBS = ["patch"]


def pod_spec(args: ElasticsearchCaDeliveryArgs) -> dict:
    env = {
        "SA_DIR": SA_DIR,
        "SOURCE_NAMESPACE": cfg.NAMESPACE,
        "SOURCE_SECRET": cfg.ES_CA_SECRET,
        "TARGET_NAMESPACE": args["target_namespace"],
        "TARGET_SECRET": args["target_secret"],
    }
    return {
        "serviceAccountName": NAME,
        "restartPolicy": "OnFailure",
        # The API token is projected explicitly (expiring, only token and cluster CA), not automounted.
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 100, "runAsGroup": 101, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "copy",
            "image": IMAGE,
            "command": ["/bin/sh", "/config/copy.sh"],
            "env": [{"name": k, "value": v} for k, v in env.items()],
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "32Mi"}},
            "securityContext": RESTRICTED_CONTAINER,
            "volumeMounts": [
                {"name": "config", "mountPath": "/config", "readOnly": True},
                {"name": "api-token", "mountPath": SA_DIR, "readOnly": True},
            ],
        }],
        "volumes": [
            {"name": "config", "configMap": {"name": NAME}},
            {"name": "api-token", "projected": {"sources": TOKEN_SOURCES}},
        ],
    }


def job_spec(args: ElasticsearchCaDeliveryArgs) -> dict:
    # The source Secret appears once ECK reconciles the cluster; until then the pod fails and is restarted.
    return {
        "backoffLimit": 10,
        "activeDeadlineSeconds": 1800,
        "template": {"metadata": {"labels": POD_LABELS}, "spec": pod_spec(args)},
    }


def cron_job_spec(args: ElasticsearchCaDeliveryArgs) -> dict:
    return {
        "schedule": SCHEDULE,
        "timeZone": "Etc/UTC",
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 3000,
        "successfulJobsHistoryLimit": 1,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {"spec": {"backoffLimit": 3, "activeDeadlineSeconds": 600, "ttlSecondsAfterFinished": 86400,
                                 "template": {"metadata": {"labels": POD_LABELS}, "spec": pod_spec(args)}}},
    }


def network_policy_spec() -> dict:
    # The API server sits outside the pod network; its address differs per cluster, so only the ports are fixed.
    return {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": POD_LABELS["app.kubernetes.io/name"]}},
        "policyTypes": ["Ingress", "Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": p} for p in (443, 6443)]}],
    }


class ElasticsearchCaDelivery(pulumi.ComponentResource):
    """Copies the public Elasticsearch HTTP CA from `logging` into the Secret falcosidekick mounts."""

    def __init__(self, name: str, args: ElasticsearchCaDeliveryArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("secstack:logging:ElasticsearchCaDelivery", name, None, opts)
        ns, target = args["target_namespace"], args["target_secret"]
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account", metadata=meta(NAME, cfg.NAMESPACE), automount_service_account_token=False, opts=child(self),
        )
        subject = [{"kind": "ServiceAccount", "name": NAME, "namespace": cfg.NAMESPACE}]
        # Created empty: the Job fills `data` (ignore_changes keeps Pulumi from wiping it on the next update).
        target_secret = k8s.core.v1.Secret(
            f"{name}-target", metadata=meta(target, ns, annotations={"secstack.io/filled-by": f"{cfg.NAMESPACE}/{NAME}"}),
            type="Opaque", opts=child(self, ignore_changes=["data", "stringData"]),
        )
        bindings = []
        for suffix, namespace, rule in (
            ("source", cfg.NAMESPACE, secret_rule(cfg.ES_CA_SECRET, SOURCE_VERBS)),
            ("target", ns, secret_rule(target, TARGET_VERBS)),
        ):
            role = k8s.rbac.v1.Role(f"{name}-{suffix}", metadata=meta(NAME, namespace), rules=[rule], opts=child(self))
            bindings.append(k8s.rbac.v1.RoleBinding(
                f"{name}-{suffix}", metadata=meta(NAME, namespace),
                role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
                subjects=subject, opts=child(self, [role, account]),
            ))
        config = k8s.core.v1.ConfigMap(f"{name}-script", metadata=meta(NAME, cfg.NAMESPACE), data={"copy.sh": COPY_SCRIPT}, opts=child(self))
        egress = k8s.networking.v1.NetworkPolicy(
            f"{name}-egress", metadata=meta("es-ca-copy", cfg.NAMESPACE), spec=network_policy_spec(), opts=child(self),
        )
        ready = [account, target_secret, *bindings, config, egress]
        digest = cfg.checksum({"copy.sh": COPY_SCRIPT, "target": f"{ns}/{target}"})
        # A new name whenever the script or the target changes, so the first copy runs again.
        job = k8s.batch.v1.Job(
            f"{name}-initial", metadata=meta(f"es-ca-copy-{digest}", cfg.NAMESPACE), spec=job_spec(args),
            opts=child(self, ready, custom_timeouts=pulumi.CustomTimeouts(create="30m", update="30m")),
        )
        cron = k8s.batch.v1.CronJob(f"{name}-refresh", metadata=meta("es-ca-copy", cfg.NAMESPACE), spec=cron_job_spec(args), opts=child(self, ready))
        self.register_outputs({"targetSecret": f"{ns}/{target}", "job": job.id, "cronJob": cron.id})
