"""Dashboards: committed JSON equals the generator's output, every query parses as PromQL, every metric is documented."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from dashboards import generate
from tests.helpers.tools import require_tool, run

DASHBOARDS = Path(generate.__file__).resolve().parent
ALERTS = sorted((DASHBOARDS / "alerts").glob("*.yaml"))
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool", "inf", "nan"}
FUNCTION_OR_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\boffset\s+\d+[smhdwy]", "", text)
    names = set()
    for match in FUNCTION_OR_METRIC.finditer(text):
        name, rest = match.group(0), text[match.end():].lstrip()
        if name.lower() in KEYWORDS or rest.startswith("(") or text[max(0, match.start() - 1)] in "0123456789.":
            continue
        names.add(name)
    return names


def documented_metrics() -> set[str]:
    rows = re.findall(r"^\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \|", (DASHBOARDS / "README.md").read_text(), re.M)
    return set(rows)


def panel_queries() -> dict[str, list[str]]:
    return {name: generate.queries(json.loads((DASHBOARDS / f"{name}.json").read_text())) for name in generate.DASHBOARDS}


def alert_exprs() -> dict[str, str]:
    return {rule["alert"]: rule["expr"] for path in ALERTS for g in yaml.safe_load(path.read_text())["groups"] for rule in g["rules"]}


@pytest.mark.parametrize("name", list(generate.DASHBOARDS))
def test_committed_json_is_the_generator_output(name):
    path = DASHBOARDS / f"{name}.json"
    assert path.exists(), f"{path} missing: run `python -m dashboards.generate`"
    assert path.read_text() == generate.render(name), f"{path} is stale: run `python -m dashboards.generate`"


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    for name in generate.DASHBOARDS:
        (tmp_path / f"{name}.json").write_text(generate.render(name))
    assert generate.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "mesh.json").write_text("{}\n")
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1
    assert "mesh.json" in capsys.readouterr().err


def test_required_dashboards_and_panels_exist():
    queries = panel_queries()
    assert set(queries) == {"overview", "mesh", "admission", "vulnerabilities", "runtime"}
    mesh = " ".join(queries["mesh"])
    assert 'connection_security_policy="mutual_tls"' in mesh and 'response_code="403"' in mesh and "source_principal" in mesh
    admission = " ".join(queries["admission"])
    assert "gatekeeper_audit_last_run_time" in admission and "gatekeeper_validation_request_duration_seconds_bucket" in admission
    assert "constraint, enforcement_action" in admission
    vulns = " ".join(queries["vulnerabilities"])
    assert "by (severity)" in vulns and "by (namespace)" in vulns and "image_repository" in vulns
    assert "by (rule)" in " ".join(queries["runtime"]) and "by (priority_raw)" in " ".join(queries["runtime"])


def test_every_dashboard_panel_has_a_query():
    for name in generate.DASHBOARDS:
        panels = json.loads((DASHBOARDS / f"{name}.json").read_text())["panels"]
        assert panels and all(p.get("targets") for p in panels), name


def test_metric_extraction_finds_metrics_not_functions_or_labels():
    expr = 'sum by (namespace) (rate(istio_requests_total{reporter="destination"}[5m])) / on() group_left up offset 5m > 0.5'
    assert metric_names(expr) == {"istio_requests_total", "up"}


def test_every_metric_used_is_documented():
    documented = documented_metrics()
    assert len(documented) >= 10
    used: dict[str, set[str]] = {}
    for name, exprs in panel_queries().items():
        for expr in exprs:
            for metric in metric_names(expr):
                used.setdefault(metric, set()).add(f"dashboard {name}")
    for alert, expr in alert_exprs().items():
        for metric in metric_names(expr):
            used.setdefault(metric, set()).add(f"alert {alert}")
    missing = {m: sorted(where) for m, where in used.items() if m not in documented}
    assert not missing, f"metrics not listed in dashboards/README.md: {missing}"
    unused = documented - set(used)
    assert not unused, f"dashboards/README.md lists metrics nothing uses: {sorted(unused)}"


def test_every_panel_query_parses_as_promql(tmp_path):
    promtool = require_tool("promtool")
    rules = [
        {"record": f"secstack:{name}:panel{i}", "expr": expr}
        for name, exprs in panel_queries().items()
        for i, expr in enumerate(exprs)
    ]
    path = tmp_path / "panels.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-panels", "rules": rules}]}))
    result = run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_promtool_rejects_a_broken_query(tmp_path):
    promtool = require_tool("promtool")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "x:y", "expr": "sum by (a (up)"}]}]}))
    assert run(promtool, "check", "rules", str(path)).returncode != 0
