"""Policy verdicts of a preview: one shape for every checker, written as JSON and SARIF 2.1.0."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

MANDATORY, ADVISORY = "mandatory", "advisory"


@dataclass(frozen=True)
class Verdict:
    policy: str  # rule id, e.g. "gatekeeper/k8spsprivileged" or "crossguard/kms-key-rotation"
    level: str  # mandatory | advisory
    severity: str  # critical | high | medium | low
    message: str
    resource: str  # URN of the resource, or "<file>#<index>" for manifests
    resource_type: str = ""
    description: str = ""
    remediation: str = ""
    file: Optional[str] = None  # manifest file (relative to out/<stack>) for code-scanning locations


# Checkers run after the program: fn(preview) -> verdicts. Issues that add checks register here.
CHECKERS: list[Callable[["object"], list[Verdict]]] = []


def checker(fn):
    CHECKERS.append(fn)
    return fn


def has_mandatory(verdicts: Iterable[Verdict]) -> bool:
    return any(v.level == MANDATORY for v in verdicts)


def write_json(verdicts: list[Verdict], path: Path, stack: str) -> None:
    payload = {
        "stack": stack,
        "summary": {
            "mandatory": sum(v.level == MANDATORY for v in verdicts),
            "advisory": sum(v.level == ADVISORY for v in verdicts),
        },
        "verdicts": [asdict(v) for v in verdicts],
    }
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


SARIF_LEVEL = {MANDATORY: "error", ADVISORY: "warning"}


def write_sarif(verdicts: list[Verdict], path: Path, version: str) -> None:
    rules: dict[str, dict] = {}
    for v in verdicts:
        rules.setdefault(
            v.policy,
            {
                "id": v.policy,
                "shortDescription": {"text": v.description or v.policy},
                "help": {"text": v.remediation or v.description or v.policy},
                "properties": {"severity": v.severity},
            },
        )
    rule_ids = list(rules)
    results = []
    for v in verdicts:
        result = {
            "ruleId": v.policy,
            "ruleIndex": rule_ids.index(v.policy),
            "level": SARIF_LEVEL.get(v.level, "note"),
            "message": {"text": v.message},
            "locations": [
                {
                    "physicalLocation": {"artifactLocation": {"uri": v.file or "Pulumi.yaml"}},
                    "logicalLocations": [{"fullyQualifiedName": v.resource, "kind": "resource"}],
                }
            ],
        }
        results.append(result)
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "secstack", "version": version, "informationUri": "https://github.com/secstack/secstack", "rules": list(rules.values())}},
                "results": results,
            }
        ],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def summary_table(verdicts: list[Verdict]) -> str:
    if not verdicts:
        return "policy verdicts: no violations"
    rows: dict[tuple[str, str, str], int] = {}
    for v in verdicts:
        key = (v.severity, v.level, v.policy)
        rows[key] = rows.get(key, 0) + 1
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    lines = [f"{'severity':<9} {'level':<10} {'count':>5}  policy"]
    for (severity, level, policy), count in sorted(rows.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0][2])):
        lines.append(f"{severity:<9} {level:<10} {count:>5}  {policy}")
    return "\n".join(lines)
