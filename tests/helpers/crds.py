"""Validate custom resources against the upstream CRD openAPIV3Schema in ../shared/crds, the way the API server
would: unknown fields are errors here (the server would prune them silently, which hides typos)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.helpers.shared import require_shared


class _Loader(yaml.SafeLoader):
    pass


# One prometheus-operator CRD has an enum item "=", which YAML 1.1 reads as the `value` tag.
_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


@functools.cache
def _index() -> dict[tuple[str, str], dict]:
    root = require_shared("crds")
    index = {}
    for path in sorted(Path(root).rglob("*.yaml")):
        try:
            docs = list(yaml.load_all(path.read_text(), Loader=_Loader))
        except yaml.YAMLError:
            continue
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                spec = doc["spec"]
                for version in spec["versions"]:
                    index[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = version["schema"]["openAPIV3Schema"]
    return index


def to_json_schema(schema: Any) -> Any:
    if isinstance(schema, list):
        return [to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "format"):
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        else:
            out[key] = to_json_schema(value)
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in out and "additionalProperties" not in out and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def crd_schema(api_version: str, kind: str) -> dict:
    index = _index()
    if (api_version, kind) not in index:
        raise KeyError(f"no upstream CRD for {api_version} {kind} in ../shared/crds")
    schema = to_json_schema(index[(api_version, kind)])
    # metadata is validated by the API server's ObjectMeta, not the CRD.
    properties = schema.setdefault("properties", {})
    properties["metadata"] = {"type": "object"}
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    return schema


def has_crd(api_version: str, kind: str) -> bool:
    return (api_version, kind) in _index()


def crd_errors(obj: dict) -> list[str]:
    schema = crd_schema(obj["apiVersion"], obj["kind"])
    validator = jsonschema.Draft7Validator(schema)
    name = f"{obj['kind']} {obj.get('metadata', {}).get('namespace', '')}/{obj.get('metadata', {}).get('name')}"
    return [f"{name}: {'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
