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
