"""Shared by the scanning/runtime tests: release lookup, ServiceMonitor matching, stack config variants."""
from __future__ import annotations

import copy
from typing import Any, Callable

from stacks.config import read_stack_file, stack_file
from stacks.settings import Settings, load


def release(preview, name: str) -> dict:
    [found] = [r for r in preview.helm_releases() if r["name"] == name]
    return found


def monitors_selecting(preview, namespace: str, labels: dict[str, str]) -> list[dict]:
    """ServiceMonitors whose selector picks a Service with these labels in this namespace."""
    out = []
    for monitor in preview.find("ServiceMonitor"):
        spec = monitor["spec"]
        names = (spec.get("namespaceSelector") or {}).get("matchNames") or [monitor["metadata"].get("namespace")]
        wanted = (spec.get("selector") or {}).get("matchLabels") or {}
        if namespace in names and wanted and all(labels.get(k) == v for k, v in wanted.items()):
            out.append(monitor)
    return out


def load_variant(stack: str, edit: Callable[[dict[str, Any]], None]) -> Settings:
    """Settings of a committed stack after `edit(raw)` changes its raw config (raises SettingsError)."""
    raw = copy.deepcopy(read_stack_file(stack_file(stack)))
    edit(raw)
    return load(raw)
