"""`secstack report`: every control with its level read off the rendered stack, exemptions, framework mapping."""
from __future__ import annotations

import datetime as dt
import re

import pytest
import yaml

from secstack import report
from secstack.cli import main
from tests.conftest import STACKS, rendered

TODAY = dt.date(2026, 1, 15)
CIS_ID = re.compile(r"^\d\.\d+\.\d+$")


def _built(stack: str, today: dt.date = TODAY) -> report.Report:
    return report.build(rendered(stack), today=today)


def _constraints(stack: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for _, o in rendered(stack).kubernetes_objects() if o["apiVersion"].startswith("constraints.gatekeeper.sh/")}


@pytest.mark.parametrize("stack", STACKS)
def test_every_control_appears_with_its_level(stack):
    built = _built(stack)
    md = report.to_markdown(built)
    data = report.load_controls()
    ids = {c.id for c in built.controls}
    assert set(data["controls"]) <= ids
    for c in built.controls:
        row = next(line for line in md.splitlines() if line.startswith(f"| `{c.id}` "))
        assert ("enforced: " if c.level.enforced else "not enforced: ") + report._md(c.level.text) in row
    # every rendered Gatekeeper constraint is a control, with the constraint's own enforcementAction as its level
    constraints = _constraints(stack)
    assert constraints
    for name, obj in constraints.items():
        control = next(c for c in built.controls if c.id == f"admission/{name}")
        assert control.level.text == obj["spec"]["enforcementAction"]
        assert "unmapped" not in control.title, f"{obj['kind']} has no mapping in policies/controls.yaml"


def test_levels_differ_by_environment_as_rendered():
    dev, prod = ({c.id: c for c in _built(s).controls} for s in ("dev", "prod"))
    assert prod["mtls"].level.text == "STRICT mesh-wide" and prod["mtls"].level.enforced
    assert prod["pod-security"].level.text == "restricted: orders, payments, storefront"
    assert dev["pod-security"].level.text == "baseline: orders, payments, storefront"
    assert prod["logging-retention"].level.text.startswith("security logs kept 180d")
    assert prod["network-isolation"].level.enforced and prod["authz"].level.enforced and prod["rbac"].level.enforced
    assert prod["kms-rotation"].level.text.startswith("4/4 keys rotate automatically")
    assert all(c.level.text == "deny" for i, c in prod.items() if i.startswith("admission/"))
    dev_rules = {i: c for i, c in dev.items() if i.startswith("admission/")}
    assert all(c.level.text == "warn" and not c.level.enforced for i, c in dev_rules.items() if i[len("admission/"):] in _constraints("dev"))
    # a rule in the mapping that this environment does not render is listed as such, not silently dropped
    rendered_kinds = {o["kind"] for o in _constraints("dev").values()}
    for kind in set(report.load_controls()["admission"]["rules"]) - rendered_kinds:
        assert dev_rules[f"admission/{kind}"].level.text == "not deployed in this environment"
    assert dict(prod["mtls"].preview_policies) == {"mesh-mtls-strict-in-prod": "mandatory"}


def test_exemptions_carry_reason_and_expiry_from_the_constraint_annotation():
    built = _built("prod")
    repos = [e for e in built.exemptions if e.control == "admission/general-allowed-repos"]
    assert {e.targets for e in repos} >= {"docker.io/istio/proxyv2:*"}
    assert all(e.reason and e.expires == "2027-06-30" for e in repos)
    assert len(built.exemptions) == sum(len(yaml.safe_load(o["metadata"]["annotations"]["secstack.io/exemptions"]))
                                        for o in _constraints("prod").values() if "secstack.io/exemptions" in (o["metadata"].get("annotations") or {}))


def test_prod_report_lists_no_expired_exemption():
    built = report.build(rendered("prod"))  # today's date: what a reviewer would see now
    assert [e for e in built.exemptions if e.expired] == []
    assert "EXPIRED" not in report.to_markdown(built)


def test_an_exemption_past_its_date_is_flagged_expired():
    built = _built("prod", today=dt.date(2027, 7, 1))
    expired = [e for e in built.exemptions if e.expired]
    assert expired and all(e.expires == "2027-06-30" for e in expired)
    assert "| EXPIRED |" in report.to_markdown(built) and ">EXPIRED<" in report.to_html(built)


@pytest.mark.parametrize("stack", STACKS)
def test_html_is_one_self_contained_file(stack, tmp_path):
    paths = report.write(_built(stack), tmp_path)
    assert sorted(p.name for p in (tmp_path / stack).iterdir()) == ["report.html", "report.md"]
    page = (tmp_path / stack / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"<script|<link|<iframe|<img|@import|url\(", page, re.I)
    assert page.count(f'<tr id="') == len(_built(stack).controls) and len(paths) == 2


def test_mapping_uses_real_framework_ids():
    data = report.load_controls()
    entries = list(data["controls"].values()) + list(data["admission"]["rules"].values())
    for entry in entries:
        assert all(CIS_ID.match(str(c)) and str(c).split(".")[0] in ("3", "5") for c in entry.get("cis", [])), entry
        assert all(m.startswith(("8.1.", "8.2 ")) for m in entry.get("mlps", [])), entry
        assert all(p.split(":")[0] in ("baseline", "restricted") for p in entry.get("pss", []) if ":" in p)
    principles = {p for e in entries for p in e["principles"]}
    assert principles == set(data["principles"]) == {"least-privilege", "layered-defence", "automation", "observability"}


def test_broken_controls_file_is_named(tmp_path):
    bad = tmp_path / "controls.yaml"
    bad.write_text("controls:\n  mtls: {title: x, enforced_at: [somewhere], level: nope, pss: [], cis: [], mlps: [], principles: []}\nadmission: {}\n")
    with pytest.raises(report.ControlsError, match=r"controls.yaml: .*controls.mtls.level: unknown reader 'nope'.*'somewhere'"):
        report.load_controls(bad)


def test_cli_writes_both_files(tmp_path, capsys):
    assert main(["report", "staging", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path}/staging/report.md" in out and (tmp_path / "staging" / "report.html").exists()
    assert main(["report", "staging", "--format", "md", "--out", str(tmp_path / "md")]) == 0
    assert [p.name for p in (tmp_path / "md" / "staging").iterdir()] == ["report.md"]


def test_cli_unknown_stack_is_bad_input(capsys, tmp_path):
    assert main(["report", "nope", "--out", str(tmp_path)]) == 2
    assert "Pulumi.nope.yaml: no such stack file" in capsys.readouterr().err
