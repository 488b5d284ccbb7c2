"""Alert rules (promtool) and the Alertmanager routing generated from each stack's settings (amtool)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.monitoring import ALERTS_DIR, SEVERITIES, alertmanager_config, rule_files
from secstack.preview import load_stack
from tests.conftest import STACKS
from tests.helpers.tools import require_tool, run

RULE_FILES = sorted(ALERTS_DIR.glob("*.yaml"))
TEST_FILES = sorted((ALERTS_DIR / "tests").glob("*.yaml"))
REQUIRED = {
    "CriticalVulnerabilityPresent",
    "GatekeeperAuditStale",
    "GatekeeperViolationsRising",
    "PlaintextTrafficInStrictMesh",
    "AuthorizationDenialSpike",
    "FalcoCriticalEvent",
    "TrivyOperatorDown",
}


def alerts() -> list[dict]:
    return [rule for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"] for rule in g["rules"]]


def test_required_alerts_exist_with_severity_and_runbook():
    rules = alerts()
    assert REQUIRED <= {r["alert"] for r in rules}
    for rule in rules:
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["labels"]["category"] == "security", rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        assert annotations["runbook_url"].startswith("docs/monitoring.md#"), rule["alert"]


def test_every_runbook_anchor_exists_in_the_docs():
    docs = (ALERTS_DIR.parent.parent / "docs" / "monitoring.md").read_text().lower()
    for rule in alerts():
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert f"### {anchor}" in docs.replace("`", ""), f"docs/monitoring.md has no runbook heading for {anchor}"


def test_plaintext_alert_only_where_the_mesh_is_strict():
    assert "mesh-strict" in {p.stem for p in rule_files(mtls_strict=True)}
    assert "mesh-strict" not in {p.stem for p in rule_files(mtls_strict=False)}


def test_every_alert_has_firing_and_quiet_cases():
    firing, quiet = set(), set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test") or []:
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {r["alert"] for r in alerts()}
    assert names - firing == set(), f"no firing test case: {sorted(names - firing)}"
    assert names - quiet == set(), f"no not-firing test case: {sorted(names - quiet)}"


def test_promtool_check_rules():
    promtool = require_tool("promtool")
    result = run(promtool, "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_FILES)


def test_promtool_test_rules():
    promtool = require_tool("promtool")
    result = run(promtool, "test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TEST_FILES)


def test_promtool_test_rules_fails_on_a_wrong_expectation(tmp_path):
    promtool = require_tool("promtool")
    case = yaml.safe_load((ALERTS_DIR / "tests" / "vulnerabilities_test.yaml").read_text())
    case["rule_files"] = [str(ALERTS_DIR / "vulnerabilities.yaml")]
    case["tests"][1]["alert_rule_test"][0]["exp_alerts"] = [{"exp_labels": {"severity": "critical"}}]
    path = tmp_path / "wrong.yaml"
    path.write_text(yaml.safe_dump(case))
    assert run(promtool, "test", "rules", str(path)).returncode != 0


# --- Alertmanager ---------------------------------------------------------------------------------------------


def _plain_receivers(stack: str) -> tuple[list[dict], str | None]:
    settings, _ = load_stack(stack)
    receivers = []
    for r in settings.monitoring.receivers:
        receivers.append(
            {
                **r.model_dump(),
                "url": f"https://hooks.example.com/{r.name}" if r.url_secret else None,
                "auth_password": "placeholder" if r.auth_password_secret else None,
            }
        )
    return receivers, settings.monitoring.default_receiver


def _write_config(tmp_path: Path, stack: str) -> tuple[Path, list[dict], str | None]:
    receivers, default = _plain_receivers(stack)
    path = tmp_path / f"alertmanager-{stack}.yaml"
    path.write_text(yaml.safe_dump(alertmanager_config(receivers, default), sort_keys=False))
    return path, receivers, default


@pytest.mark.parametrize("stack", STACKS)
def test_amtool_check_config(stack, tmp_path):
    amtool = require_tool("amtool")
    path, _, _ = _write_config(tmp_path, stack)
    result = run(amtool, "check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("stack", STACKS)
def test_amtool_routes_each_severity_to_its_receivers(stack, tmp_path):
    amtool = require_tool("amtool")
    path, receivers, default = _write_config(tmp_path, stack)
    assert receivers, f"{stack} declares no receivers"
    for severity in SEVERITIES:
        expected = [r["name"] for r in receivers if severity in r["severities"]] or [default or "null"]
        result = run(
            amtool, "config", "routes", "test", f"--config.file={path}", f"--verify.receivers={','.join(expected)}",
            f"severity={severity}", "category=security", "alertname=Example", "namespace=orders",
        )
        assert result.returncode == 0, f"{stack} {severity}: {result.stdout}{result.stderr}"
    for labels, receiver in ((["alertname=Watchdog", "severity=none"], "null"), (["alertname=KubePodCrashLooping", "severity=critical"], default or "null")):
        result = run(amtool, "config", "routes", "test", f"--config.file={path}", f"--verify.receivers={receiver}", *labels)
        assert result.returncode == 0, f"{stack} {labels}: {result.stdout}{result.stderr}"


def test_amtool_routes_test_catches_a_wrong_receiver(tmp_path):
    amtool = require_tool("amtool")
    path, _, _ = _write_config(tmp_path, "prod")
    result = run(amtool, "config", "routes", "test", f"--config.file={path}", "--verify.receivers=security-email", "severity=warning", "category=security")
    assert result.returncode != 0


def test_amtool_check_config_rejects_an_unknown_receiver(tmp_path):
    amtool = require_tool("amtool")
    config = alertmanager_config([], None)
    config["route"]["receiver"] = "nobody"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    assert run(amtool, "check-config", str(path)).returncode != 0
