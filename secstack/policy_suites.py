"""Run gator-format Suites (`kind: Suite`, apiVersion test.gatekeeper.sh/v1alpha1) through the offline engine,
with `gator verify` semantics: each case's object is evaluated against the test's constraint and every assertion
(`violations: N | yes | no`, optional `message` regex) must hold for the violations whose message matches."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from secstack.gatekeeper import Constraint, Engine, GatekeeperError, RULES_DIR


@dataclass
class CaseResult:
    suite: str
    test: str
    case: str
    ok: bool
    messages: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise GatekeeperError(f"{path}: cannot read YAML: {exc}") from None


def object_and_operation(doc: dict) -> tuple[dict, str]:
    """A case object is a Kubernetes object or an AdmissionReview carrying one (gator uses these for UPDATE)."""
    if isinstance(doc, dict) and doc.get("kind") == "AdmissionReview":
        request = doc.get("request") or {}
        return request.get("object") or {}, str(request.get("operation") or "CREATE")
    return doc, "CREATE"


def check_assertion(assertion: dict, messages: list[str]) -> str | None:
    """None when the assertion holds, else what went wrong."""
    expected = assertion.get("violations", "yes")
    pattern = assertion.get("message")
    matched = [m for m in messages if pattern is None or re.search(str(pattern), m)]
    about = f" matching {pattern!r}" if pattern is not None else ""
    # YAML 1.1 reads bare yes/no as booleans; compare by type so that 1 and 0 stay counts.
    if expected == "yes" or expected is True:
        return None if matched else f"expected violations{about}, got none (all: {messages})"
    if expected == "no" or expected is False:
        return None if not matched else f"expected no violations{about}, got {matched}"
    try:
        want = int(expected)
    except (TypeError, ValueError):
        return f"bad assertion violations: {expected!r} (use a number, yes or no)"
    return None if len(matched) == want else f"expected {want} violations{about}, got {len(matched)}: {messages}"


def run_suite(
    suite_path: Path,
    engine: Engine | None = None,
    map_constraint: Callable[[dict], dict] | None = None,
) -> list[CaseResult]:
    """Run one suite.yaml. `map_constraint` lets a caller adapt an upstream constraint (kind, parameters)."""
    engine = engine or Engine()
    suite = _load(suite_path)
    if not isinstance(suite, dict) or suite.get("kind") != "Suite":
        raise GatekeeperError(f"{suite_path}: not a gator Suite (kind: Suite)")
    base = suite_path.parent
    name = str((suite.get("metadata") or {}).get("name") or base.name)
    results: list[CaseResult] = []
    for test in suite.get("tests") or []:
        manifest = _load(base / test["constraint"])
        if map_constraint:
            manifest = map_constraint(manifest)
        constraint = Constraint.from_manifest(manifest)
        engine.check_parameters(constraint)
        for case in test.get("cases") or []:
            result = CaseResult(suite=name, test=str(test.get("name")), case=str(case.get("name")), ok=True)
            obj, operation = object_and_operation(_load(base / case["object"]))
            result.messages = [v.message for v in engine.evaluate(obj, [constraint], operation=operation)]
            for assertion in case.get("assertions") or [{"violations": "yes"}]:
                problem = check_assertion(assertion, result.messages)
                if problem:
                    result.ok = False
                    result.problems.append(problem)
            results.append(result)
    return results


def suite_paths(directory: Path = RULES_DIR) -> list[Path]:
    return sorted(p / "suite.yaml" for p in directory.iterdir() if p.is_dir() and (p / "template.yaml").exists())
