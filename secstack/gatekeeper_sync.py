"""Embed the shared Rego libs (policies/gatekeeper/lib/*.rego) into every ConstraintTemplate that imports them.

Gatekeeper needs each template self-contained, so the libs are copied into `spec.targets[].libs`; this keeps the
copies identical to the one source. Run `python -m secstack.gatekeeper_sync` after editing a lib; the policy tests
fail while a template carries a stale copy.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from secstack.gatekeeper import RULES_DIR, TARGET

LIB_DIR = RULES_DIR / "lib"


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def libs() -> dict[str, str]:
    """lib package name (e.g. `lib.secstack.pods`) -> source text."""
    found = {}
    for path in sorted(LIB_DIR.glob("*.rego")):
        text = path.read_text()
        package = re.search(r"^package\s+(\S+)", text, re.M)
        if package:
            found[package.group(1)] = text
    return found


def required_libs(rego: str, available: dict[str, str]) -> list[str]:
    needed, queue = [], [rego]
    while queue:
        text = queue.pop()
        for package in sorted(available):
            if package not in needed and re.search(rf"\bdata\.{re.escape(package)}\b", text):
                needed.append(package)
                queue.append(available[package])
    return [available[p] for p in sorted(needed)]


def dump(template: dict) -> str:
    return yaml.dump(template, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)


def synced(template: dict, available: dict[str, str]) -> dict:
    for target in template["spec"]["targets"]:
        if target.get("target") == TARGET:
            wanted = required_libs(target["rego"], available)
            if wanted:
                target["libs"] = wanted
            else:
                target.pop("libs", None)
    return template


def stale_templates(directory: Path = RULES_DIR) -> list[Path]:
    available = libs()
    stale = []
    for path in sorted(directory.glob("*/template.yaml")):
        template = yaml.safe_load(path.read_text())
        before = [t.get("libs") for t in template["spec"]["targets"]]
        after = [t.get("libs") for t in synced(template, available)["spec"]["targets"]]
        if before != after:
            stale.append(path)
    return stale


def main() -> int:
    available = libs()
    for path in sorted(RULES_DIR.glob("*/template.yaml")):
        template = yaml.safe_load(path.read_text())
        text = dump(synced(template, available))
        if text != path.read_text():
            path.write_text(text)
            print(f"updated {path.relative_to(RULES_DIR.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
