"""Run gator-format suites (ours and gatekeeper-library's) through secstack.gatekeeper.Engine.

gator semantics: `violations` is a count, `yes` (at least one) or `no` (none), counted over the messages matching
the optional `message` regex. An object of kind AdmissionReview supplies `request.object` and `request.operation`.
Upstream suites name `template.yaml`, which is absent from ../shared (no upstream Rego); the template used is ours,
found by the constraint's kind after KIND_MAP.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import yaml

from secstack.gatekeeper import Constraint, Engine
from tests.helpers.shared import require_shared

# gatekeeper-library constraint kind -> ours, where the names differ.
KIND_MAP = {"K8sPSPAutomountServiceAccountTokenPod": "K8sBlockAutomountToken"}


@dataclass(frozen=True)
class Case:
    where: str  # suite-relative "test/case" for messages
    constraint: dict
    obj: dict
    operation: str
    assertions: tuple[dict, ...]


def upstream_template_dir(name: str) -> Path:
    """e.g. "general/allowedrepos" -> ../shared/conformance/gatekeeper-library/library/general/allowedrepos."""
    return require_shared("conformance", "gatekeeper-library", "library", *name.split("/"))


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def unwrap(obj: dict) -> tuple[dict, str]:
    if obj.get("kind") == "AdmissionReview":
        request = obj.get("request") or {}
        return request.get("object") or {}, request.get("operation") or "CREATE"
    return obj, "CREATE"


def mapped(constraint: dict) -> dict:
    out = dict(constraint)
    out["kind"] = KIND_MAP.get(constraint["kind"], constraint["kind"])
    return out


def suite_cases(suite_path: Path) -> Iterator[Case]:
    base = suite_path.parent
    suite = load_yaml(suite_path)
    for test in suite.get("tests") or []:
        constraint = mapped(load_yaml(base / test["constraint"]))
        for case in test.get("cases") or []:
            obj, operation = unwrap(load_yaml(base / case["object"]))
            yield Case(f"{suite_path.parent.name}/{test['name']}/{case['name']}", constraint, obj, operation,
                       tuple(case.get("assertions") or ({"violations": "yes"},)))


def messages(engine: Engine, constraint: dict, obj: dict, operation: str = "CREATE") -> list[str]:
    return [v.message for v in engine.evaluate(obj, [Constraint.from_manifest(constraint)], operation=operation)]


def assertion_failure(assertion: dict, found: list[str]) -> str | None:
    pattern = assertion.get("message")
    hits = [m for m in found if pattern is None or re.search(str(pattern), m)]
    want = assertion.get("violations", "yes")
    if want is True or want == "yes":
        ok = bool(hits)
    elif want is False or want == "no":
        ok = not hits
    else:
        ok = len(hits) == int(want)
    return None if ok else f"want violations={want!r} matching {pattern!r}, got {found}"


def case_failures(engine: Engine, case: Case) -> list[str]:
    found = messages(engine, case.constraint, case.obj, case.operation)
    failures = []
    for assertion in case.assertions:
        failure = assertion_failure(assertion, found)
        if failure:
            failures.append(f"{case.where}: {failure}")
    return failures
