"""Pinned Helm charts: one place for every chart version the stack installs (checked against ../shared/charts)."""
from __future__ import annotations

from dataclasses import dataclass

ISTIO_REPO = "https://istio-release.storage.googleapis.com/charts"


@dataclass(frozen=True)
class ChartPin:
    chart: str
    version: str
    repo: str


ISTIO_BASE = ChartPin("base", "1.30.3", ISTIO_REPO)
ISTIOD = ChartPin("istiod", "1.30.3", ISTIO_REPO)
ISTIO_CNI = ChartPin("cni", "1.30.3", ISTIO_REPO)
ISTIO_GATEWAY = ChartPin("gateway", "1.30.3", ISTIO_REPO)
KUBE_PROMETHEUS_STACK = ChartPin(
    "kube-prometheus-stack", "88.5.3", "https://prometheus-community.github.io/helm-charts"
)  # operator v0.93.1, grafana 12.11.1, kube-state-metrics 8.4.0
GATEKEEPER = ChartPin("gatekeeper", "3.23.0", "https://open-policy-agent.github.io/gatekeeper/charts")
TRIVY_OPERATOR = ChartPin("trivy-operator", "0.34.0", "https://aquasecurity.github.io/helm-charts/")  # app v0.32.0
FALCO = ChartPin("falco", "9.1.0", "https://falcosecurity.github.io/charts")  # app 0.44.1, bundles falcosidekick 0.12.*
ECK_OPERATOR = ChartPin("eck-operator", "3.5.0", "https://helm.elastic.co")  # Elastic License 2.0; CRDs included
# Upstream's Helm repository is its GitHub Pages site; its index.yaml lists only the newest release, so mirror the
# pinned 0.5.8 package into your own chart repository before deploying (docs/data-security.md, "Chart source").
ACK_SECRET_MANAGER = ChartPin("ack-secret-manager", "0.5.8", "https://aliyuncontainerservice.github.io/ack-secret-manager")
