"""components/ as a Pulumi component package: the SDK's own analyzer infers every public component's schema;
the committed schema must match it, and no input of the last release may be removed or retyped."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pulumi.provider.experimental.analyzer import Analyzer

from components import package

ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ROOT / "components"


@pytest.fixture(scope="module")
def schema() -> dict:
    return package.schema()


def test_analyzer_finds_every_public_component_with_inputs_and_outputs():
    result = Analyzer(package.PACKAGE).analyze(package.public_components())
    found = result["component_definitions"]
    expected = {name for names in package.PUBLIC.values() for name in names}
    assert set(found) == expected
    for name, definition in found.items():
        assert definition.inputs, f"{name} has no inputs"
        assert definition.outputs, f"{name} has no annotated outputs"
        assert definition.description, f"{name} has no docstring"
    team = found["Team"]
    assert {"name", "owner", "namespaces", "podSecurity", "serviceAccounts", "quota"} <= set(team.inputs)
    assert not team.inputs["name"].optional and team.inputs["istioInjection"].optional
    assert team.inputs_mapping["podSecurity"] == "pod_security" and set(team.outputs) == {"namespaces"}
    mesh = found["IstioMesh"]
    assert mesh.inputs["jwt"].optional and mesh.inputs["services"].items.ref.endswith(":index:MeshServiceArgs")


def test_every_public_component_class_is_exported():
    import importlib

    for module, names in package.PUBLIC.items():
        mod = importlib.import_module(module)
        components = {n for n, v in vars(mod).items() if isinstance(v, type) and issubclass(v, package.pulumi.ComponentResource) and v.__module__ == module}
        assert components == set(names), f"{module}: public components {components} vs PUBLIC {names}"


def test_secret_inputs_are_not_plain(schema):
    """Values that carry secrets are pulumi.Input, so a caller can pass a secret Output."""
    entry = schema["types"]["secstack:index:SecretEntryArgs"]["properties"]
    assert entry["data"].get("plain") is None and entry["data"]["type"] == "string"


def test_committed_schema_matches_the_analyzer(schema):
    committed = json.loads((COMPONENTS / "schema.json").read_text())
    assert committed == schema, "components/schema.json drifted from the components: run `make schema`"
    assert schema["version"] == package.version()


def _inputs(s: dict) -> dict[str, dict]:
    """Every input of every component and type: 'Team.quota' -> property schema."""
    out = {}
    for token, resource in s["resources"].items():
        for name, prop in resource.get("inputProperties", {}).items():
            out[f"{token.rsplit(':', 1)[-1]}.{name}"] = (prop, name in resource.get("requiredInputs", []))
    for token, typ in s["types"].items():
        for name, prop in typ.get("properties", {}).items():
            out[f"{token.rsplit(':', 1)[-1]}.{name}"] = (prop, name in typ.get("required", []))
    return out


def _shape(prop: dict) -> object:
    return {k: _shape(v) if isinstance(v, dict) else v for k, v in prop.items() if k != "description"}


def breaking_changes(released: dict, current: dict) -> list[str]:
    old, new = _inputs(released), _inputs(current)
    problems = []
    for key, (prop, _) in sorted(old.items()):
        if key not in new:
            problems.append(f"{key}: removed")
        elif _shape(new[key][0]) != _shape(prop):
            problems.append(f"{key}: retyped {_shape(prop)} -> {_shape(new[key][0])}")
    for key, (_, required) in sorted(new.items()):
        if required and (key not in old or not old[key][1]):
            problems.append(f"{key}: newly required")
    for token in released["resources"]:
        if token not in current["resources"]:
            problems.append(f"{token}: component removed")
    return problems


def test_no_input_of_the_last_release_is_removed_or_retyped(schema):
    released = json.loads((COMPONENTS / "schema.released.json").read_text())
    assert released["version"] == "0.1.0"
    assert breaking_changes(released, schema) == [], "breaking change to component args: see docs/compatibility.md"


def test_the_compatibility_check_catches_removed_retyped_and_new_required_inputs(schema):
    changed = json.loads(json.dumps(schema))
    team = changed["resources"]["secstack:index:Team"]
    del team["inputProperties"]["owner"]
    team["inputProperties"]["podSecurity"] = {"type": "integer", "plain": True}
    team["inputProperties"]["costCentre"] = {"type": "string", "plain": True}
    team["requiredInputs"].append("costCentre")
    problems = breaking_changes(schema, changed)
    assert [p.split(" ")[0:2] for p in problems] == [["Team.owner:", "removed"], ["Team.podSecurity:", "retyped"], ["Team.costCentre:", "newly"]]


def test_plugin_manifest_and_entry_point():
    manifest = yaml.safe_load((COMPONENTS / "PulumiPlugin.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    main = (COMPONENTS / "__main__.py").read_text()
    assert "component_provider_host(public_components(), name=PACKAGE, version=version())" in main
    requirements = (COMPONENTS / "requirements.txt").read_text().split()
    assert {r.split(">=")[0] for r in requirements if ">=" in r} >= {"pulumi", "pulumi-kubernetes", "pulumi-alicloud"}
