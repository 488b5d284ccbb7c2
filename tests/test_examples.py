"""The example app-team projects: pinned to this release, and the TypeScript one uses only inputs the component
package schema has (the Python one runs its own mock tests: examples/app-team-python/tests)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

import secstack
from tests.helpers.shared import require_shared

ROOT = Path(__file__).resolve().parent.parent
PY, TS = ROOT / "examples" / "app-team-python", ROOT / "examples" / "app-team-typescript"
SCHEMA = json.loads((ROOT / "components" / "schema.json").read_text())


def test_python_example_pins_this_release():
    pins = [line.split("#")[0].strip() for line in (PY / "requirements.txt").read_text().splitlines()]
    assert f"secstack=={secstack.__version__}" in pins
    source = (PY / "app_team.py").read_text()
    for module in ("components.teams", "components.mesh", "components.secrets"):
        assert f"from {module} import" in source


@pytest.mark.parametrize("project", [PY, TS], ids=["python", "typescript"])
def test_example_project_files_are_valid(project):
    schema = json.loads(require_shared("schemas/pulumi-project.json").read_text())
    jsonschema.validate(yaml.safe_load((project / "Pulumi.yaml").read_text()), schema)


def test_typescript_example_references_the_component_package():
    project = yaml.safe_load((TS / "Pulumi.yaml").read_text())
    assert (TS / project["packages"]["secstack"]).resolve() == (ROOT / "components").resolve()
    assert (ROOT / "components" / "PulumiPlugin.yaml").exists()
    assert SCHEMA["name"] == "secstack"
    deps = json.loads((TS / "package.json").read_text())["dependencies"]
    assert "@pulumi/secstack" in deps and "@pulumi/pulumi" in deps


def _skip_string(src: str, i: int) -> int:
    quote = src[i]
    i += 1
    while src[i] != quote:
        i += 2 if src[i] == "\\" else 1
    return i + 1


def _literal(src: str, i: int):
    """Parse the object/array literal starting at src[i] into nested dict/list skeletons (leaves are None)."""
    if src[i] == "{":
        out, i = {}, i + 1
        while True:
            m = re.compile(r"\s*(?:,\s*)?(\}|([A-Za-z_$][\w$]*)\s*:\s*)").match(src, i)
            if m.group(1) == "}":
                return out, m.end()
            out[m.group(2)], i = _value(src, m.end())
    out, i = [], i + 1
    while True:
        m = re.compile(r"\s*(?:,\s*)?(\]?)").match(src, i)
        if m.group(1) == "]":
            return out, m.end()
        item, i = _value(src, m.end())
        out.append(item)


def _value(src: str, i: int):
    if src[i] in "{[":
        return _literal(src, i)
    depth = 0
    while depth or src[i] not in ",}]":
        if src[i] in "\"'`":
            i = _skip_string(src, i)
            continue
        depth += src[i] in "([{"
        depth -= src[i] in ")]}"
        i += 1
    return None, i


def _check(value, prop: dict, path: str, problems: list[str]) -> None:
    if isinstance(value, dict) and "$ref" in prop:
        typ = SCHEMA["types"][prop["$ref"].split("/")[-1]]
        _check_object(value, typ["properties"], typ.get("required", []), path, problems)
    elif isinstance(value, list) and "items" in prop:
        for n, item in enumerate(value):
            _check(item, prop["items"], f"{path}[{n}]", problems)


def _check_object(obj: dict, properties: dict, required: list[str], path: str, problems: list[str]) -> None:
    for key, value in obj.items():
        if key not in properties:
            problems.append(f"{path}.{key}: not an input in components/schema.json")
        else:
            _check(value, properties[key], f"{path}.{key}", problems)
    problems += [f"{path}.{key}: required input missing" for key in required if key not in obj]


def ts_problems(source: str) -> tuple[list[str], list[str]]:
    used, problems = [], []
    for m in re.finditer(r"new secstack\.(\w+)\(\s*\"[^\"]+\",\s*", source):
        token = f"secstack:index:{m.group(1)}"
        used.append(m.group(1))
        if token not in SCHEMA["resources"]:
            problems.append(f"{m.group(1)}: no such component")
            continue
        args, _ = _literal(source, m.end())
        resource = SCHEMA["resources"][token]
        _check_object(args, resource["inputProperties"], resource.get("requiredInputs", []), m.group(1), problems)
    for m in re.finditer(r"\b(team|secrets)\.(\w+)\b", source):
        component = {"team": "Team", "secrets": "Secrets"}[m.group(1)]
        if m.group(2) not in SCHEMA["resources"][f"secstack:index:{component}"]["properties"]:
            problems.append(f"{component}.{m.group(2)}: not an output")
    return used, problems


def test_every_input_used_in_index_ts_exists_in_the_schema():
    used, problems = ts_problems((TS / "index.ts").read_text())
    assert used == ["Team", "Secrets"]
    assert problems == []


def test_the_input_check_catches_unknown_and_missing_inputs():
    bad = 'const t = new secstack.Team("x", { name: "x", owner: "o", colour: "red", quota: { pods: 1, cpuz: "1" } });'
    _, problems = ts_problems(bad)
    assert "Team.colour: not an input in components/schema.json" in problems
    assert "Team.quota.cpuz: not an input in components/schema.json" in problems
    assert "Team.namespaces: required input missing" in problems and "Team.quota.requestsCpu: required input missing" in problems
