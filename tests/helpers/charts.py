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
    defaults = chart_values(chart)
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
            if isinstance(default, dict) and not default:
                continue  # free-form map
            walk(value, default, dotted)

    walk(values, defaults, "")
    return problems
