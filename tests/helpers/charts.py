"""Check Helm values against the upstream chart's values.yaml: Helm ignores unknown keys without a warning."""
from __future__ import annotations

import functools
from typing import Any, Iterable

import yaml

from tests.helpers.shared import require_shared

ISTIO_PREFIX = "_internal_defaults_do_not_set"
# Keys the Istio templates read that values.yaml lacks (see shared/charts/INDEX.md).
ISTIO_EXTRA = {"profile", "compatibilityVersion", "global.profile"}
ISTIO_CHARTS = {"base", "istiod", "gateway", "cni", "ztunnel"}
# Keys whose value the charts render verbatim as a Kubernetes API object (toYaml): their inside is the API's.
KUBERNETES_OBJECT_KEYS = {
    "securityContext", "podSecurityContext", "containerSecurityContext", "resources", "affinity", "nodeSelector",
    "tolerations", "seccompProfile", "topologySpreadConstraints", "readinessProbe", "livenessProbe", "startupProbe",
    "scanJobPodTemplateContainerSecurityContext", "scanJobPodTemplatePodSecurityContext", "podDisruptionBudget",
}
# Values under these keys go to a subchart (see shared/charts/INDEX.md): parent key -> subchart directory.
SUBCHARTS = {
    "kube-prometheus-stack": {"grafana": "grafana", "kube-state-metrics": "kube-state-metrics", "prometheus-node-exporter": "prometheus-node-exporter"},
    "falco": {"falcosidekick": "falcosidekick"},
}


@functools.cache
def chart_values(chart: str) -> dict:
    path = require_shared("charts", *chart.split("/"), "values.yaml")
    values = yaml.safe_load(path.read_text()) or {}
    if chart in ISTIO_CHARTS and ISTIO_PREFIX in values:
        values = {**{k: v for k, v in values.items() if k != ISTIO_PREFIX}, **values[ISTIO_PREFIX]}
    return values


def unknown_keys(chart: str, values: dict, free_form: Iterable[str] = ()) -> list[str]:
    """Dotted paths of keys we set that the chart does not define. Keys under an empty-map default, under
    `global`, or under a path in `free_form` (documented pass-through maps) are accepted."""
    defaults = dict(chart_values(chart))
    for key, subchart in SUBCHARTS.get(chart, {}).items():
        # The parent may set a few keys of its own under the subchart's key; the subchart defines the rest.
        defaults[key] = {**chart_values(subchart), **(defaults.get(key) or {})}
    extra = ISTIO_EXTRA if chart in ISTIO_CHARTS else set()
    free = set(free_form)
    problems: list[str] = []

    def walk(ours: Any, theirs: Any, path: str) -> None:
        if not isinstance(ours, dict):
            return
        for key, value in ours.items():
            dotted = f"{path}.{key}" if path else key
            if dotted in extra or dotted in free:
                continue
            if not isinstance(theirs, dict) or key not in theirs:
                problems.append(dotted)
                continue
            default = theirs[key]
            if (isinstance(default, dict) and not default) or key in KUBERNETES_OBJECT_KEYS:
                continue  # free-form map
            walk(value, default, dotted)

    walk(values, defaults, "")
    return problems
