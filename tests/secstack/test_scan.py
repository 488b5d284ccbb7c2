"""`secstack scan IMAGE`: trivy command line, report parsing, the verdict and its exit codes.

Trivy's vulnerability database needs network access, so the scan itself is exercised with a recorded report
(tests/fixtures/trivy-image-report.json) and with stand-in executables written under tmp_path.
"""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from secstack import cli, image_scan
from secstack.image_scan import ScanError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "trivy-image-report.json"
IMAGE = "registry.example.com/shop/orders-api:1.4.2"


def _report() -> dict:
    return image_scan.parse_report_text(FIXTURE.read_text(), str(FIXTURE))


def _fake_trivy(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "trivy"
    path.write_text(f"#!{sys.executable}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_findings_cover_vulnerabilities_and_secrets_in_severity_order():
    found = image_scan.findings(_report())
    assert [(f.severity, f.id) for f in found] == [
        ("CRITICAL", "CVE-2024-45491"),
        ("CRITICAL", "aws-secret-access-key"),
        ("HIGH", "CVE-2024-2511"),
        ("MEDIUM", "CVE-2023-50495"),
        ("MEDIUM", "GHSA-9wx4-h78v-vm56"),
        ("LOW", "CVE-2011-3374"),
        ("UNKNOWN", "TEMP-0841856-B18BAF"),
    ]
    libexpat = found[0]
    assert (libexpat.package, libexpat.installed, libexpat.fixed) == ("libexpat1", "2.5.0-1", "2.5.0-1+deb12u1")
    assert found[1].kind == "secret" and found[1].target == "/app/config/settings.env:3"


@pytest.mark.parametrize(
    "threshold, blocking",
    [("CRITICAL", 2), ("HIGH", 3), ("MEDIUM", 5), ("LOW", 6), ("UNKNOWN", 7)],
)
def test_gate_counts_findings_at_or_above_the_threshold(threshold, blocking):
    assert len(image_scan.gated(image_scan.findings(_report()), image_scan.parse_severities(threshold))) == blocking


def test_severity_argument_is_a_minimum_or_an_exact_list():
    assert image_scan.parse_severities("high") == ["HIGH", "CRITICAL"]
    assert image_scan.parse_severities("CRITICAL,LOW") == ["LOW", "CRITICAL"]
    with pytest.raises(ScanError, match="unknown severity SEVERE"):
        image_scan.parse_severities("SEVERE")
    with pytest.raises(ScanError):
        image_scan.parse_severities(" , ")


def test_command_line_uses_the_threshold_and_never_lets_trivy_decide_the_exit_code(tmp_path):
    cmd = image_scan.trivy_command(Path("/opt/trivy"), IMAGE, ["MEDIUM", "HIGH", "CRITICAL"])
    assert cmd[:2] == ["/opt/trivy", "image"]
    pairs = dict(zip(cmd, cmd[1:]))
    assert pairs["--format"] == "json" and pairs["--severity"] == "MEDIUM,HIGH,CRITICAL"
    assert pairs["--exit-code"] == "0" and pairs["--scanners"] == "vuln,secret"
    assert "--skip-check-update" in cmd and "--ignore-unfixed" not in cmd and "--skip-db-update" not in cmd
    assert cmd[-2:] == ["--", IMAGE], "the image comes after `--`, so it can never be read as a flag"
    offline = image_scan.trivy_command(Path("/opt/trivy"), IMAGE, ["HIGH"], ignore_unfixed=True, skip_db_update=True, cache_dir=tmp_path)
    assert "--ignore-unfixed" in offline and "--skip-db-update" in offline
    assert dict(zip(offline, offline[1:]))["--cache-dir"] == str(tmp_path)


@pytest.mark.parametrize("image", ["", "--help", "-o/etc/passwd", "alpine latest", "alpine;rm -rf /"])
def test_bad_image_references_are_rejected(image):
    with pytest.raises(ScanError, match="not an image reference"):
        image_scan.trivy_command(Path("/opt/trivy"), image, ["HIGH"])


@pytest.mark.parametrize(
    "text, says",
    [("not json", "not a JSON report"), ('{"SchemaVersion": 1, "Results": []}', "SchemaVersion 2"), ('{"SchemaVersion": 2, "Results": {}}', "must be a list")],
)
def test_bad_reports_are_rejected(text, says):
    with pytest.raises(ScanError, match=says):
        image_scan.parse_report_text(text, "report.json")


def test_report_without_results_has_no_findings():
    assert image_scan.findings(image_scan.parse_report_text('{"SchemaVersion": 2, "ArtifactName": "x"}', "r")) == []


def test_run_trivy_parses_its_json_output(tmp_path):
    trivy = _fake_trivy(tmp_path, f"import sys; sys.stdout.write(open({str(FIXTURE)!r}).read())")
    report = image_scan.run_trivy(image_scan.trivy_command(trivy, IMAGE, ["HIGH", "CRITICAL"]))
    assert report["ArtifactName"] == IMAGE


def test_run_trivy_failure_explains_the_database_needs_network(tmp_path):
    trivy = _fake_trivy(tmp_path, "import sys; sys.stderr.write('FATAL failed to download vulnerability DB\\n'); sys.exit(1)")
    with pytest.raises(ScanError) as err:
        image_scan.run_trivy(image_scan.trivy_command(trivy, IMAGE, ["HIGH"]))
    assert "exit 1" in str(err.value) and "network" in str(err.value) and "failed to download" in str(err.value)


def test_the_packaged_trivy_binary_is_found():
    path = image_scan.find_trivy({})
    assert path.name == "trivy" and os.access(path, os.X_OK)


def test_explicit_trivy_path_must_be_executable(tmp_path):
    with pytest.raises(ScanError, match="SECSTACK_TRIVY"):
        image_scan.find_trivy({"SECSTACK_TRIVY": str(tmp_path / "missing")})


def test_cli_exits_1_on_findings_at_the_prod_threshold(capsys):
    assert cli.main(["scan", IMAGE, "--stack", "prod", "--from-report", str(FIXTURE)]) == cli.VIOLATIONS
    out = capsys.readouterr().out
    assert "7 findings, 5 at the threshold (MEDIUM,HIGH,CRITICAL)" in out
    assert "CVE-2024-45491" in out and "CVE-2011-3374" not in out


def test_cli_exits_0_when_nothing_reaches_the_threshold(tmp_path, capsys):
    report = json.loads(FIXTURE.read_text())
    for result in report["Results"]:
        for vuln in result.get("Vulnerabilities") or []:
            vuln["Severity"] = "LOW"
        result.pop("Secrets", None)
    path = tmp_path / "low.json"
    path.write_text(json.dumps(report))
    assert cli.main(["scan", IMAGE, "--stack", "dev", "--from-report", str(path)]) == cli.OK
    assert "0 at the threshold (HIGH,CRITICAL)" in capsys.readouterr().out
    assert cli.main(["scan", IMAGE, "--from-report", str(path), "--severity", "LOW"]) == cli.VIOLATIONS


def test_cli_runs_trivy_with_the_stack_threshold(tmp_path, monkeypatch, capsys):
    seen = tmp_path / "argv.json"
    trivy = _fake_trivy(
        tmp_path,
        f"import json, sys; json.dump(sys.argv[1:], open({str(seen)!r}, 'w')); sys.stdout.write(open({str(FIXTURE)!r}).read())",
    )
    monkeypatch.setenv("SECSTACK_TRIVY", str(trivy))
    assert cli.main(["scan", IMAGE, "--stack", "dev"]) == cli.VIOLATIONS
    argv = json.loads(seen.read_text())
    assert dict(zip(argv, argv[1:]))["--severity"] == "HIGH,CRITICAL" and argv[-1] == IMAGE
    assert "3 at the threshold (HIGH,CRITICAL)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, says",
    [
        (["scan", IMAGE, "--severity", "SEVERE"], "unknown severity"),
        (["scan", IMAGE, "--stack", "nosuchstack"], "no such stack file"),
        (["scan", "-x", "--from-report", str(FIXTURE)], None),  # argparse rejects the unknown flag
        (["scan", IMAGE, "--from-report", "/nonexistent/report.json"], "cannot read the report"),
    ],
)
def test_cli_bad_input_exits_2_with_a_message(argv, says, capsys):
    assert cli.main(argv) == cli.BAD_INPUT
    err = capsys.readouterr().err
    if says:
        assert says in err and "Traceback" not in err


def test_cli_missing_trivy_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SECSTACK_TRIVY", str(tmp_path / "no-trivy-here"))
    assert cli.main(["scan", IMAGE]) == cli.BAD_INPUT
    assert "not an executable file" in capsys.readouterr().err
