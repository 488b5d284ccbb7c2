"""Offline OPA Gatekeeper: load the ConstraintTemplates in policies/gatekeeper/ and evaluate constraints on
Kubernetes objects with regorus, the way Gatekeeper's validating webhook would.

One regorus engine is compiled per rule, once per process, and reused for every object (only the input changes),
so checking thousands of rendered objects against every rule stays fast.
"""
from __future__ import annotations

import fnmatch
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

RULES_DIR = Path(__file__).resolve().parents[1] / "policies" / "gatekeeper"
BUNDLES = ("pss-baseline", "pss-restricted", "general")
# A bundle may include others (gatekeeper-library's pod-security-restricted is a superset of baseline).
BUNDLE_INCLUDES = {"pss-restricted": ("pss-baseline",)}
TARGET = "admission.k8s.gatekeeper.sh"
ACTIONS = ("deny", "warn", "dryrun")

# Kinds whose objects have no namespace; a namespaced object written without one lands in "default".
CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "PersistentVolume", "StorageClass", "ClusterRole", "ClusterRoleBinding",
    "CustomResourceDefinition", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "PriorityClass", "IngressClass",
    "RuntimeClass", "APIService", "CSIDriver", "ConstraintTemplate", "Config", "GatewayClass",
})


class GatekeeperError(Exception):
    """A rule folder, template or constraint is unusable; the message names the file or key."""


class EvaluationError(GatekeeperError):
    """The Rego of a rule failed at run time on an object."""


@dataclass(frozen=True)
class Rule:
    kind: str
    folder: str
    template: dict
    bundles: tuple[str, ...]
    parameter_schema: dict


@dataclass(frozen=True)
class Constraint:
    kind: str
    name: str
    enforcement_action: str = "deny"
    parameters: dict = field(default_factory=dict)
    match: dict = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, obj: dict) -> "Constraint":
        if not isinstance(obj, dict) or not obj.get("kind") or not isinstance(obj.get("metadata"), dict):
            raise GatekeeperError("a constraint needs `kind` and `metadata.name`")
        spec = obj.get("spec") or {}
        action = spec.get("enforcementAction", "deny")
        if action not in ACTIONS:
            raise GatekeeperError(f"constraint {obj['metadata'].get('name')}: spec.enforcementAction must be one of {ACTIONS}, not {action!r}")
        return cls(
            kind=obj["kind"],
            name=obj["metadata"].get("name", ""),
            enforcement_action=action,
            parameters=dict(spec.get("parameters") or {}),
            match=dict(spec.get("match") or {}),
        )

    def to_manifest(self) -> dict:
        spec: dict[str, Any] = {"enforcementAction": self.enforcement_action}
        if self.match:
            spec["match"] = self.match
        if self.parameters:
            spec["parameters"] = self.parameters
        return {
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": self.kind,
            "metadata": {"name": self.name},
            "spec": spec,
        }


@dataclass(frozen=True)
class Violation:
    kind: str
    constraint: str
    enforcement_action: str
    message: str
    object_kind: str
    namespace: str
    name: str


# ---------------------------------------------------------------------------------------------------- loading


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise GatekeeperError(f"{path}: cannot read YAML: {exc}") from None


def load_bundles(directory: Path = RULES_DIR) -> dict[str, tuple[str, ...]]:
    """bundles.yaml: `bundles: {name: {description, kinds: [...]}}` -> kind -> bundles it belongs to."""
    doc = _load_yaml(directory / "bundles.yaml") or {}
    membership: dict[str, list[str]] = {}
    for bundle, body in (doc.get("bundles") or {}).items():
        if bundle not in BUNDLES:
            raise GatekeeperError(f"{directory / 'bundles.yaml'}: unknown bundle {bundle!r} (known: {', '.join(BUNDLES)})")
        for kind in (body or {}).get("kinds") or []:
            membership.setdefault(kind, []).append(bundle)
    return {kind: tuple(sorted(set(names))) for kind, names in membership.items()}


@functools.cache
def _load_rules_cached(directory: Path) -> dict[str, Rule]:
    membership = load_bundles(directory) if (directory / "bundles.yaml").exists() else {}
    rules: dict[str, Rule] = {}
    for folder in sorted(p for p in directory.iterdir() if p.is_dir() and (p / "template.yaml").exists()):
        template = _load_yaml(folder / "template.yaml")
        try:
            kind = template["spec"]["crd"]["spec"]["names"]["kind"]
            _rego_of(template)
        except (KeyError, TypeError, IndexError):
            raise GatekeeperError(f"{folder / 'template.yaml'}: not a ConstraintTemplate with spec.crd.spec.names.kind and a Rego target") from None
        if kind in rules:
            raise GatekeeperError(f"{folder}: constraint kind {kind} is also defined by {rules[kind].folder}")
        schema = ((template["spec"]["crd"]["spec"].get("validation") or {}).get("openAPIV3Schema")) or {}
        rules[kind] = Rule(kind=kind, folder=folder.name, template=template,
                           bundles=membership.get(kind, ()), parameter_schema=schema)
    unknown = set(membership) - set(rules)
    if unknown:
        raise GatekeeperError(f"{directory / 'bundles.yaml'} lists kinds with no rule folder: {', '.join(sorted(unknown))}")
    return rules


def load_rules(directory: Path = RULES_DIR) -> dict[str, Rule]:
    return _load_rules_cached(Path(directory).resolve())


def _rego_of(template: dict) -> tuple[str, list[str]]:
    for target in template["spec"]["targets"]:
        if target.get("target") == TARGET:
            return target["rego"], list(target.get("libs") or [])
    raise KeyError(TARGET)


def rego_package(rego: str) -> str:
    for line in rego.splitlines():
        line = line.strip()
        if line.startswith("package "):
            return line.split()[1]
    raise GatekeeperError("Rego has no package line")


def bundle_kinds(bundle: str, rules: dict[str, Rule] | None = None) -> list[str]:
    if bundle not in BUNDLES:
        raise GatekeeperError(f"unknown bundle {bundle!r}; choose one of {', '.join(BUNDLES)}")
    rules = load_rules() if rules is None else rules
    wanted = {bundle, *BUNDLE_INCLUDES.get(bundle, ())}
    return sorted(kind for kind, rule in rules.items() if wanted & set(rule.bundles))


def bundle_constraints(bundle: str) -> list[Constraint]:
    rules = load_rules()
    return [Constraint(kind=kind, name=f"{bundle}-{rules[kind].folder}") for kind in bundle_kinds(bundle, rules)]


# ---------------------------------------------------------------------------------------------------- matching


def _glob(pattern: str, value: str) -> bool:
    # Gatekeeper's namespace globs: a leading or trailing `*` is a suffix/prefix match.
    return fnmatch.fnmatchcase(value, pattern) if "*" in pattern else pattern == value


def _group_version(obj: dict) -> tuple[str, str]:
    api = obj.get("apiVersion")
    api = api if isinstance(api, str) else ""
    group, _, version = api.rpartition("/")
    return group, version


def _labels_match(selector: dict, labels: dict) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def object_namespace(obj: dict) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    kind = obj.get("kind")
    if kind == "Namespace":
        return str(meta.get("name") or "")
    if kind in CLUSTER_SCOPED:
        return ""
    return str(meta.get("namespace") or "default")


def matches(obj: dict, match: dict) -> bool:
    """Gatekeeper spec.match. namespaceSelector needs live Namespace objects: offline it does not narrow the match
    (so a constraint can only report more, never less)."""
    group, _ = _group_version(obj)
    kind = obj.get("kind")
    kinds = match.get("kinds")
    if kinds:
        if not any(
            ("*" in (k.get("apiGroups") or [""]) or group in (k.get("apiGroups") or [""]))
            and ("*" in (k.get("kinds") or ["*"]) or kind in (k.get("kinds") or ["*"]))
            for k in kinds
        ):
            return False
    namespace = object_namespace(obj)
    scope = match.get("scope", "*")
    if scope == "Cluster" and namespace and kind != "Namespace":
        return False
    if scope == "Namespaced" and (not namespace or kind == "Namespace"):
        return False
    if namespace:
        if match.get("namespaces") and not any(_glob(p, namespace) for p in match["namespaces"]):
            return False
        if any(_glob(p, namespace) for p in match.get("excludedNamespaces") or []):
            return False
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    if match.get("name") and not _glob(match["name"], str(meta.get("name") or "")):
        return False
    if match.get("labelSelector"):
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        if not _labels_match(match["labelSelector"], labels):
            return False
    return True


# ---------------------------------------------------------------------------------------------------- evaluation


@functools.cache
def _compiled(directory: Path, kind: str, rego_v0: bool = False):
    import regorus

    rule = _load_rules_cached(directory)[kind]
    rego, libs = _rego_of(rule.template)
    engine = regorus.Engine()
    if rego_v0:
        engine.set_rego_v0(True)
    try:
        for i, lib in enumerate(libs):
            engine.add_policy(f"{rule.folder}/lib{i}.rego", lib)
        engine.add_policy(f"{rule.folder}/template.rego", rego)
    except Exception as exc:  # regorus raises plain RuntimeError/ValueError on parse errors
        raise GatekeeperError(f"{RULES_DIR.name}/{rule.folder}/template.yaml: Rego does not compile: {exc}") from None
    return engine, f"data.{rego_package(rego)}.violation"


def compile_rule(rule: Rule, rego_v0: bool = False, directory: Path = RULES_DIR):
    """The compiled regorus engine of a rule (used by tests to check both Rego dialects accept it)."""
    return _compiled(Path(directory).resolve(), rule.kind, rego_v0)[0]


def review_for(obj: dict, operation: str = "CREATE") -> dict:
    group, version = _group_version(obj)
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return {
        "object": obj,
        "kind": {"group": group, "version": version, "kind": obj.get("kind")},
        "name": meta.get("name"),
        "namespace": object_namespace(obj),
        "operation": operation,
        "userInfo": {"username": "secstack-offline", "groups": ["system:authenticated"]},
    }


class Engine:
    def __init__(self, rules: dict[str, Rule] | None = None, directory: Path = RULES_DIR):
        self.directory = Path(directory).resolve()
        self.rules = load_rules(self.directory) if rules is None else rules

    def evaluate(self, obj: dict, constraints: Iterable[Constraint], operation: str = "CREATE") -> list[Violation]:
        if not isinstance(obj, dict):
            return []
        review = None
        found: list[Violation] = []
        for constraint in constraints:
            if constraint.kind not in self.rules:
                raise GatekeeperError(f"constraint {constraint.name}: no ConstraintTemplate defines kind {constraint.kind}")
            if not matches(obj, constraint.match):
                continue
            if review is None:
                review = review_for(obj, operation)
            for message in self._run(constraint, review):
                found.append(Violation(
                    kind=constraint.kind, constraint=constraint.name,
                    enforcement_action=constraint.enforcement_action, message=message,
                    object_kind=str(obj.get("kind") or ""), namespace=review["namespace"] or "",
                    name=str(review["name"] or ""),
                ))
        return found

    def _run(self, constraint: Constraint, review: dict) -> list[str]:
        engine, query = _compiled(self.directory, constraint.kind)
        try:
            engine.set_input_json(json.dumps({"review": review, "parameters": constraint.parameters}, default=str))
            result = json.loads(engine.eval_rule_as_json(query))
        except Exception as exc:
            where = f"{review['kind']['kind']} {review['namespace'] or '-'}/{review['name']}"
            raise EvaluationError(f"rule {self.rules[constraint.kind].folder} ({constraint.kind}) failed on {where}: {exc}") from None
        if not isinstance(result, list):  # undefined/empty set
            return []
        return sorted(str(v.get("msg", v)) if isinstance(v, dict) else str(v) for v in result)
