"""Offline OPA Gatekeeper: load the ConstraintTemplates in policies/gatekeeper/ and evaluate constraints on
Kubernetes objects with regorus, the way Gatekeeper's validating webhook would.

One regorus engine is compiled per rule, once per process, and reused for every object (only the input changes),
so checking thousands of rendered objects against every rule stays fast.
"""
from __future__ import annotations

import fnmatch
import functools
import json
import multiprocessing
import os
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
# A template annotated `policy.secstack.io/evaluates: pod-spec` reads only the pod template (through
# lib.secstack.pods), so objects without one cannot violate it and the engine skips them. Tests hold rules to this.
EVALUATES_ANNOTATION = "policy.secstack.io/evaluates"
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"})

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

    @property
    def pod_spec_only(self) -> bool:
        annotations = (self.template.get("metadata") or {}).get("annotations") or {}
        return annotations.get(EVALUATES_ANNOTATION) == "pod-spec"


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
        return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as exc:
        raise GatekeeperError(f"{path}: cannot read YAML: {exc}") from None


@dataclass(frozen=True)
class Bundle:
    name: str
    description: str
    kinds: tuple[str, ...]            # every kind the bundle runs, its includes' kinds too
    parameters: dict                  # kind -> parameters (own entries win over included bundles')


@functools.cache
def _bundles_cached(directory: Path) -> dict[str, Bundle]:
    path = directory / "bundles.yaml"
    doc = _load_yaml(path) or {}
    raw = doc.get("bundles") if isinstance(doc, dict) else None
    if not isinstance(raw, dict):
        raise GatekeeperError(f"{path}: expected a `bundles:` mapping of name -> {{kinds, parameters}}")
    unknown = set(raw) - set(BUNDLES)
    if unknown:
        raise GatekeeperError(f"{path}: unknown bundle(s) {', '.join(sorted(unknown))} (known: {', '.join(BUNDLES)})")

    def resolve(name: str, seen: tuple[str, ...]) -> Bundle:
        if name in seen:
            raise GatekeeperError(f"{path}: bundle includes form a cycle: {' -> '.join(seen + (name,))}")
        body = raw.get(name) or {}
        kinds: list[str] = []
        parameters: dict = {}
        for included in body.get("includes", BUNDLE_INCLUDES.get(name, ())):
            inner = resolve(included, seen + (name,))
            kinds += [k for k in inner.kinds if k not in kinds]
            parameters.update(inner.parameters)
        kinds += [k for k in body.get("kinds") or [] if k not in kinds]
        parameters.update(body.get("parameters") or {})
        stray = set(parameters) - set(kinds)
        if stray:
            raise GatekeeperError(f"{path}: bundle {name} has parameters for kinds it does not run: {', '.join(sorted(stray))}")
        return Bundle(name=name, description=str(body.get("description", "")), kinds=tuple(kinds), parameters=parameters)

    return {name: resolve(name, ()) for name in BUNDLES if name in raw}


def load_bundles(directory: Path = RULES_DIR) -> dict[str, Bundle]:
    return _bundles_cached(Path(directory).resolve())


@functools.cache
def _load_rules_cached(directory: Path) -> dict[str, Rule]:
    bundles = load_bundles(directory) if (directory / "bundles.yaml").exists() else {}
    membership: dict[str, tuple[str, ...]] = {}
    for bundle in bundles.values():
        for kind in bundle.kinds:
            membership[kind] = membership.get(kind, ()) + (bundle.name,)
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


def bundle_kinds(bundle: str, rules: dict[str, Rule] | None = None, directory: Path = RULES_DIR) -> list[str]:
    """The constraint kinds a bundle runs, its includes' kinds too, in bundles.yaml order."""
    bundles = load_bundles(directory)
    if bundle not in bundles:
        raise GatekeeperError(f"unknown bundle {bundle!r}; choose one of {', '.join(sorted(bundles))}")
    rules = load_rules(directory) if rules is None else rules
    return [kind for kind in bundles[bundle].kinds if kind in rules]


# What a pod rule matches: Pods and every workload kind that carries a pod template, so a bad Deployment is denied
# when it is applied (and caught at preview), not later when its ReplicaSet tries to create Pods.
POD_KINDS = [
    {"apiGroups": [""], "kinds": ["Pod"]},
    {"apiGroups": ["apps"], "kinds": ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]},
    {"apiGroups": ["batch"], "kinds": ["Job", "CronJob"]},
]


def match_kinds(rule: Rule) -> list[dict]:
    return [dict(k, kinds=list(k["kinds"]), apiGroups=list(k["apiGroups"])) for k in _match_kinds(rule.folder)]


@functools.cache
def _match_kinds(folder: str) -> tuple[dict, ...]:
    """Kinds from the rule's sample constraint; pod rules get Pod plus every workload kind."""
    path = RULES_DIR / folder / "samples" / "constraint.yaml"
    try:
        sample = yaml.safe_load(path.read_text()) if path.exists() else None
    except (OSError, yaml.YAMLError) as exc:
        raise GatekeeperError(f"{path}: cannot read YAML: {exc}") from None
    kinds = ((sample or {}).get("spec") or {}).get("match", {}).get("kinds") if isinstance(sample, dict) else None
    if not kinds or any("Pod" in (k.get("kinds") or []) for k in kinds):
        return tuple(POD_KINDS)
    return tuple({"apiGroups": list(k.get("apiGroups") or [""]), "kinds": list(k.get("kinds") or [])} for k in kinds)


def bundle_constraints(bundle: str, directory: Path = RULES_DIR) -> list[Constraint]:
    """Every rule of a bundle (and of the bundles it includes) at `deny`, with the bundle's parameters."""
    bundles = load_bundles(directory)
    if bundle not in bundles:
        raise GatekeeperError(f"unknown bundle {bundle!r}; choose one of {', '.join(sorted(bundles))}")
    rules = load_rules(directory)
    chosen = bundles[bundle]
    return [
        Constraint(
            kind=kind,
            name=rules[kind].folder,
            parameters=dict(chosen.parameters.get(kind) or {}),
            match={"kinds": match_kinds(rules[kind])},
        )
        for kind in chosen.kinds
    ]


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


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def pod_spec(obj: dict) -> dict | None:
    """The pod spec an object carries (Pod, workload templates, CronJob, PodTemplate), as lib.secstack.pods finds it."""
    kind = obj.get("kind")
    if kind == "Pod":
        spec = obj.get("spec")
    elif kind in WORKLOAD_KINDS:
        spec = _dig(obj, "spec", "template", "spec")
    elif kind == "CronJob":
        spec = _dig(obj, "spec", "jobTemplate", "spec", "template", "spec")
    elif kind == "PodTemplate":
        spec = _dig(obj, "template", "spec")
    else:
        spec = None
    return spec if isinstance(spec, dict) else None


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


_JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}


def parameter_errors(value: Any, schema: dict, where: str = "parameters") -> list[str]:
    """Type errors of constraint parameters against a template's openAPIV3Schema, as Gatekeeper would reject them
    at admission (type, enum, items, properties). Unknown keys are not errors: Gatekeeper prunes them."""
    errors: list[str] = []
    expected = schema.get("type")
    python_type = _JSON_TYPES.get(expected)
    if python_type and (not isinstance(value, python_type) or (expected in ("integer", "number") and isinstance(value, bool))):
        return [f"{where}: expected {expected}, got {type(value).__name__} {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value and value[key] is not None:
                errors += parameter_errors(value[key], sub, f"{where}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors += parameter_errors(item, schema["items"], f"{where}[{i}]")
    return errors


# evaluate_all forks only when the work outweighs starting the processes.
PARALLEL_WORKERS = 2
PARALLEL_MIN_OBJECTS = 200
_FORKED: tuple | None = None  # (engine, objects, constraints, operation) handed to forked workers


def _evaluate_chunk(bounds: tuple[int, int]) -> list[list[Violation]] | GatekeeperError:
    engine, objects, constraints, operation = _FORKED
    try:
        return engine._evaluate_batch(objects[bounds[0]:bounds[1]], constraints, operation)
    except GatekeeperError as exc:  # handed back so the parent raises the first chunk's error, as serially
        return exc


class Engine:
    def __init__(self, rules: dict[str, Rule] | None = None, directory: Path = RULES_DIR):
        self.directory = Path(directory).resolve()
        self.rules = load_rules(self.directory) if rules is None else rules
        self._checked: dict[int, Constraint] = {}  # constraints whose parameters passed the schema (kept alive)

    def check_parameters(self, constraint: Constraint) -> None:
        """Reject parameters Gatekeeper would reject (wrong types for the template's schema) with a clear error.
        Callers that take constraints from users (the CLI, the admission component) call this once per constraint;
        `evaluate` itself does not, so it never raises for parameters alone."""
        if id(constraint) in self._checked and self._checked[id(constraint)] is constraint:
            return
        rule = self.rules.get(constraint.kind)
        if rule is None:
            raise GatekeeperError(f"constraint {constraint.name}: no ConstraintTemplate defines kind {constraint.kind}")
        if not isinstance(constraint.parameters, dict):
            raise GatekeeperError(f"constraint {constraint.kind}/{constraint.name}: parameters must be a mapping")
        if constraint.enforcement_action not in ACTIONS:
            raise GatekeeperError(f"constraint {constraint.kind}/{constraint.name}: enforcementAction must be one of {ACTIONS}")
        errors = parameter_errors(constraint.parameters, rule.parameter_schema or {})
        if errors:
            raise GatekeeperError(f"constraint {constraint.kind}/{constraint.name} has invalid parameters "
                                  f"(template {rule.folder}): " + "; ".join(errors))
        self._checked[id(constraint)] = constraint

    def evaluate(self, obj: dict, constraints: Iterable[Constraint], operation: str = "CREATE") -> list[Violation]:
        if not isinstance(obj, dict):
            return []
        review = review_json = None
        has_pod = pod_spec(obj) is not None
        found: list[Violation] = []
        for constraint in constraints:
            rule = self.rules.get(constraint.kind)
            if rule is None:
                raise GatekeeperError(f"constraint {constraint.name}: no ConstraintTemplate defines kind {constraint.kind}")
            if (rule.pod_spec_only and not has_pod) or not matches(obj, constraint.match):
                continue
            if review is None:
                review = review_for(obj, operation)
                review_json = json.dumps(review, default=str)
            for message in self._run(rule, constraint, review, review_json):
                found.append(Violation(
                    kind=constraint.kind, constraint=constraint.name,
                    enforcement_action=constraint.enforcement_action, message=message,
                    object_kind=str(obj.get("kind") or ""), namespace=review["namespace"] or "",
                    name=str(review["name"] or ""),
                ))
        return found

    def evaluate_all(self, objects: list[dict], constraints: list[Constraint], operation: str = "CREATE",
                     workers: int | None = None) -> list[list[Violation]]:
        """`evaluate` on every object, in order. With many objects and more than one core the objects are split
        into contiguous chunks evaluated by forked processes, which inherit the compiled engines; the result (and
        the first error, if any) is the same as evaluating serially."""
        constraints = list(constraints)
        workers = min(os.cpu_count() or 1, PARALLEL_WORKERS) if workers is None else workers
        if workers < 2 or len(objects) < PARALLEL_MIN_OBJECTS or "fork" not in multiprocessing.get_all_start_methods():
            return self._evaluate_batch(objects, constraints, operation)
        for constraint in constraints:  # compile before forking so every child inherits the engines
            try:
                if constraint.kind in self.rules:
                    _compiled(self.directory, constraint.kind)
            except GatekeeperError:
                pass  # raised by the worker that first needs the rule, in the serial order
        global _FORKED
        _FORKED = (self, objects, constraints, operation)
        size = -(-len(objects) // (workers * 4))
        chunks = [(start, min(start + size, len(objects))) for start in range(0, len(objects), size)]
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                parts = pool.map(_evaluate_chunk, chunks, chunksize=1)
        finally:
            _FORKED = None
        for part in parts:
            if isinstance(part, GatekeeperError):
                raise part
        return [violations for part in parts for violations in part]

    def _evaluate_batch(self, objects: list[dict], constraints: list[Constraint], operation: str) -> list[list[Violation]]:
        """`evaluate` on each object, one constraint at a time over all of them: running one regorus engine many
        times in a row is measurably faster than switching between every rule's engine for each object."""
        reviews = [(review_for(obj, operation), pod_spec(obj) is not None) if isinstance(obj, dict) else None for obj in objects]
        jsons: list[str | None] = [None] * len(objects)
        found: list[list[Violation]] = [[] for _ in objects]
        try:
            for constraint in constraints:
                rule = self.rules.get(constraint.kind)
                if rule is None:
                    raise GatekeeperError(f"constraint {constraint.name}: no ConstraintTemplate defines kind {constraint.kind}")
                parameters_json = json.dumps(constraint.parameters, default=str)
                for i, obj in enumerate(objects):
                    if reviews[i] is None:
                        continue
                    review, has_pod = reviews[i]
                    if (rule.pod_spec_only and not has_pod) or not matches(obj, constraint.match):
                        continue
                    if jsons[i] is None:
                        jsons[i] = json.dumps(review, default=str)
                    found[i] += [Violation(
                        kind=constraint.kind, constraint=constraint.name,
                        enforcement_action=constraint.enforcement_action, message=message,
                        object_kind=str(obj.get("kind") or ""), namespace=review["namespace"] or "",
                        name=str(review["name"] or ""),
                    ) for message in self._run(rule, constraint, review, jsons[i], parameters_json)]
        except GatekeeperError:
            # Raise the error serial evaluation meets first (object by object), not this order's first.
            return [self.evaluate(obj, constraints, operation) for obj in objects]
        return found

    def _run(self, rule: Rule, constraint: Constraint, review: dict, review_json: str, parameters_json: str | None = None) -> list[str]:
        engine, query = _compiled(self.directory, constraint.kind)
        if parameters_json is None:
            parameters_json = json.dumps(constraint.parameters, default=str)
        try:
            # The review is serialised once per object and shared by every constraint evaluated on it.
            engine.set_input_json(f'{{"review":{review_json},"parameters":{parameters_json}}}')
            result = json.loads(engine.eval_rule_as_json(query))
        except Exception as exc:
            where = f"{review['kind']['kind']} {review['namespace'] or '-'}/{review['name']}"
            detail = str(exc).split("Stack backtrace:")[0].strip()
            raise EvaluationError(f"rule {rule.folder} ({constraint.kind}) failed on {where}: {detail}") from None
        if not isinstance(result, list):  # "<undefined>": the package defines no violations for this input
            return []
        return sorted(str(v.get("msg", v)) if isinstance(v, dict) else str(v) for v in result)
