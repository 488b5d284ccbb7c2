"""The security posture of a rendered stack, flattened to `key -> value`, read off what the stack declares
(not off settings), so that it shows what would really be deployed."""
from __future__ import annotations

import json
from typing import Any, Iterable

from secstack.preview import Preview

KMS_KEY = "alicloud:kms/key:Key"
KMS_SECRET = "alicloud:kms/secret:Secret"
REPLICA_KEYS = ("replicas", "replicaCount", "autoscaleMin", "minAvailable")


def _walk(values: Any, path: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(values, dict):
        for key, value in values.items():
            yield from _walk(value, f"{path}.{key}" if path else key)
    else:
        yield path, values


def posture(preview: Preview) -> dict[str, Any]:
    out: dict[str, Any] = {"environment": preview.settings.environment}
    for peer in preview.find("PeerAuthentication"):
        meta = peer["metadata"]
        out[f"mesh.mtls[{meta.get('namespace')}/{meta['name']}]"] = (peer.get("spec") or {}).get("mtls", {}).get("mode")
    for ns in preview.find("Namespace"):
        labels = ns["metadata"].get("labels") or {}
        if "secstack.io/team" in labels:
            out[f"podSecurity[{ns['metadata']['name']}]"] = labels.get("pod-security.kubernetes.io/enforce")
    for release in preview.helm_releases():
        out[f"helm[{release['name']}].version"] = release["version"]
        for path, value in _walk(release["values"]):
            leaf = path.rsplit(".", 1)[-1]
            if leaf in REPLICA_KEYS or path.endswith("outboundTrafficPolicy.mode"):
                out[f"helm[{release['name']}].{path}"] = value
    for _, obj in preview.kubernetes_objects():
        if obj["apiVersion"].startswith("constraints.gatekeeper.sh/"):
            name = f"{obj['kind']}/{obj['metadata']['name']}"
            out[f"admission[{name}].enforcementAction"] = (obj.get("spec") or {}).get("enforcementAction", "deny")
            exemptions = (obj["metadata"].get("annotations") or {}).get("secstack.io/exemptions")
            if exemptions:
                for e in json.loads(exemptions):
                    what = ",".join(e.get("namespaces", []) + e.get("images", []))
                    out[f"admission[{name}].exemption[{what}]"] = f"{e.get('reason')} (expires {e.get('expires') or 'never'})"
        if obj["kind"] == "Elasticsearch":
            out[f"logging[{obj['metadata']['name']}].nodes"] = sum(int(s.get("count", 0)) for s in obj.get("spec", {}).get("nodeSets", []))
    for r in preview.of_type(KMS_KEY):
        inputs = r.redacted_inputs()
        for field in ("automaticRotation", "rotationInterval", "pendingWindowInDays", "protectionLevel"):
            out[f"kms[{r.name}].{field}"] = inputs.get(field)
        out[f"kms[{r.name}].protect"] = r.options["protect"]
    for r in preview.of_type(KMS_SECRET):
        out[f"secrets[{r.name}].protect"] = r.options["protect"]
    logging = getattr(preview.settings, "logging", None)
    if logging is not None:
        for field in ("retention_days",):
            if hasattr(logging, field):
                out[f"logging.{field}"] = getattr(logging, field)
    out.update(_policy_levels(preview))
    return out


def _policy_levels(preview: Preview) -> dict[str, Any]:
    from secstack.crossguard import PolicyConfigError, load_config

    try:
        config = load_config(preview.stack, preview.settings.environment)
    except PolicyConfigError:
        return {}
    levels = {}
    for name, entry in config.items():
        levels[f"policy[{name}]"] = entry.get("enforcementLevel") if isinstance(entry, dict) else entry
    return levels


def diff(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "a": a.get(k), "b": b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
