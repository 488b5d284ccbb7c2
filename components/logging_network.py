"""NetworkPolicies of the logging namespace: default deny, then only the named paths to Elasticsearch and Kibana."""
from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import logging_config as cfg
from components.common import meta

FALCO_NAMESPACE = "falco"
ES_PODS = {"matchLabels": {"elasticsearch.k8s.elastic.co/cluster-name": cfg.ES_NAME}}
KIBANA_PODS = {"matchLabels": {"kibana.k8s.elastic.co/name": cfg.ES_NAME}}
SHIPPER_PODS = {"matchLabels": {"beat.k8s.elastic.co/name": cfg.SHIPPER_NAME}}
LIFECYCLE_PODS = {"matchLabels": {"app.kubernetes.io/name": "log-lifecycle"}}
SIDEKICK_PODS = {"matchLabels": {"app.kubernetes.io/name": "falcosidekick"}}


def _ns(name: str) -> dict:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _tcp(*ports: int) -> list[dict]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def policies() -> dict[str, dict[str, Any]]:
    """name -> NetworkPolicy spec."""
    to_es = {"to": [{"podSelector": ES_PODS}], "ports": _tcp(9200)}
    return {
        "default-deny": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{
                "to": [{**_ns("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }],
        },
        "elasticsearch": {
            "podSelector": ES_PODS,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                # HTTP: the shippers, Kibana, the lifecycle Job, falcosidekick, and the ECK operator that manages the cluster.
                {"from": [{"podSelector": SHIPPER_PODS}, {"podSelector": KIBANA_PODS}, {"podSelector": LIFECYCLE_PODS},
                          {**_ns(FALCO_NAMESPACE), "podSelector": SIDEKICK_PODS}, _ns(cfg.OPERATOR_NAMESPACE)],
                 "ports": _tcp(9200)},
                {"from": [{"podSelector": ES_PODS}], "ports": _tcp(9300)},  # transport between the nodes
            ],
            "egress": [{"to": [{"podSelector": ES_PODS}], "ports": _tcp(9300)}],
        },
        "kibana": {
            "podSelector": KIBANA_PODS,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [_ns("istio-system"), _ns("istio-ingress")], "ports": _tcp(5601)}],
            "egress": [
                to_es,
                # Kibana's sidecar gets its config and certificate from istiod.
                {"to": [{**_ns("istio-system"), "podSelector": {"matchLabels": {"app": "istiod"}}}], "ports": _tcp(15012)},
            ],
        },
        "shipper": {
            "podSelector": SHIPPER_PODS,
            "policyTypes": ["Ingress", "Egress"],
            # The API server sits outside the pod network; its address differs per cluster, so only the ports are fixed.
            "egress": [to_es, {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": _tcp(443, 6443)}],
        },
        "log-lifecycle": {"podSelector": LIFECYCLE_PODS, "policyTypes": ["Ingress", "Egress"], "egress": [to_es]},
    }


def network_policies(opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    return [
        k8s.networking.v1.NetworkPolicy(f"logging-{name}", metadata=meta(name, cfg.NAMESPACE), spec=spec, opts=opts)
        for name, spec in policies().items()
    ]
