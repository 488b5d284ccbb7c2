"""secstack:logging: profile per environment, guards, validation messages that name the key."""
from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from secstack.cli import main
from stacks.config import read_stack_file, stack_file
from stacks.settings import SettingsError, load, profile
from stacks.settings.logging import PROFILE, LoggingSettings
from tests.components.logging_render import stack_logging
from tests.helpers.shared import REPO

RETENTION = {"dev": 7, "staging": 30, "prod": 180}


def _problems(raw: dict) -> list[str]:
    try:
        load(raw)
    except SettingsError as exc:
        return exc.problems
    return []


def _prod_with(**logging) -> dict:
    raw = read_stack_file(stack_file("prod"))
    raw["secstack:logging"] = {**(raw.get("secstack:logging") or {}), **logging}
    return raw


def _logging_problems(raw: dict) -> list[str]:
    return [p for p in _problems(raw) if p.startswith("secstack:logging")]


@pytest.mark.parametrize("environment", sorted(RETENTION))
def test_profile_retention_per_environment(environment):
    assert profile(environment)["logging"]["retentionDays"] == RETENTION[environment]
    _, settings = stack_logging(environment)
    assert settings.retention_days == RETENTION[environment]


def test_committed_stacks_have_a_logging_section_and_its_secrets():
    for stack in RETENTION:
        document = yaml.safe_load(stack_file(stack).read_text())["config"]
        assert "secstack:logging" in document, stack
        secrets = document["secstack:secretValues"]
        for name in ("logging-setup-password", "logging-shipper-password", "falco-elasticsearch-password"):
            assert set(secrets[name]) == {"secure"}, f"{stack}: {name} must be a secure: value"


def test_prod_retention_below_180_days_is_rejected_naming_the_key():
    problems = _logging_problems(_prod_with(retentionDays=90))
    assert len(problems) == 1
    assert problems[0].startswith("secstack:logging.retentionDays: 90 weakens the prod profile (180)")
    assert "secstack:logging.reason" in problems[0] and "MLPS" in problems[0]


def test_a_reason_accepts_the_shorter_retention():
    assert _logging_problems(_prod_with(retentionDays=90, reason="PIPL minimisation ruling, ticket SEC-142")) == []


def test_a_longer_retention_needs_no_reason():
    assert _logging_problems(_prod_with(retentionDays=400)) == []


@pytest.mark.parametrize(
    "override, key",
    [
        ({"nodeCount": 1, "zoneAwareness": False}, "secstack:logging.nodeCount"),
        ({"keepVolumes": False}, "secstack:logging.keepVolumes"),
        ({"zoneAwareness": False}, "secstack:logging.zoneAwareness"),
    ],
)
def test_prod_floors_are_guarded(override, key):
    problems = _logging_problems(_prod_with(**override))
    assert any(p.startswith(key + ":") for p in problems), problems


@pytest.mark.parametrize(
    "override, key, words",
    [
        ({"nodeCount": 2}, "secstack:logging.nodeCount", "2 master-eligible nodes"),
        ({"storageSize": "10Gi"}, "secstack:logging.storageSize", "at least 20Gi"),
        ({"retentionDays": 0}, "secstack:logging.retentionDays", "greater than or equal to 1"),
        ({"kibanaHost": "kibana.shop.example.com"}, "secstack:logging", "kibanaAllowedCidrs: required"),
        ({"kibanaHost": "k.example.com", "kibanaAllowedCidrs": ["0.0.0.0/0"]}, "secstack:logging.kibanaAllowedCidrs", "whole internet"),
        ({"esMemory": "lots"}, "secstack:logging.esMemory", "Kubernetes quantity"),
        ({"retentionDay": 7}, "secstack:logging.retentionDay", "unknown key"),
        ({"shipperPassword": "nope"}, "secstack:logging.shipperPassword", "not in secstack:secretValues"),
    ],
)
def test_bad_values_name_the_key(override, key, words):
    problems = _logging_problems(_prod_with(**override))
    assert any(p.startswith(key) and words in p for p in problems), problems


def test_single_node_cannot_be_zone_aware():
    with pytest.raises(ValidationError, match="single node cannot be spread over zones"):
        LoggingSettings(nodeCount=1, zoneAwareness=True)


def test_profiles_are_valid_models():
    for environment, data in PROFILE.items():
        settings = LoggingSettings.model_validate(data)
        assert settings.node_count in (1, 3), environment


def test_cli_rejects_a_short_prod_retention_with_exit_2(tmp_path, capsys):
    for stack in ("prod",):
        document = yaml.safe_load(stack_file(stack).read_text())
        document["config"]["secstack:logging"]["retentionDays"] = 30
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
    code = main(["preview", "prod", "--stacks-dir", str(tmp_path), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "secstack:logging.retentionDays: 30 weakens the prod profile (180)" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert (REPO / "stacks" / "Pulumi.prod.yaml").exists()
