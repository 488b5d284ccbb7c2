"""`secstack scan IMAGE`: `trivy image` with a stack's severity threshold, for CI.

Exit codes: 0 no finding at or above the threshold, 1 such findings exist, 2 bad input or the scan did not run
(trivy missing, no database and no network, unreadable report).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from secstack.cli import OK, VIOLATIONS, command, fail


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="image reference, e.g. registry.example.com/shop/orders-api:1.4.2")
    p.add_argument("--stack", default="dev", help="stack whose secstack:scanning threshold applies (default dev)")
    p.add_argument("--stacks-dir", type=Path, default=None, help="directory of the stack files (default stacks/)")
    p.add_argument(
        "--severity",
        help="override the stack threshold: one severity is a minimum (HIGH = HIGH,CRITICAL), a list is exact",
    )
    p.add_argument("--timeout", default="10m", help="trivy scan timeout (default 10m)")
    p.add_argument("--skip-db-update", action="store_true", help="use the cached vulnerability database (offline)")
    p.add_argument("--cache-dir", type=Path, default=None, help="trivy cache directory")
    p.add_argument("--from-report", type=Path, default=None, help="judge a saved `trivy image --format json` report instead of scanning")


@command("scan", "scan an image with trivy at the stack's severity threshold (exit 1 on findings)", _configure)
def cmd_scan(args: argparse.Namespace) -> int:
    from secstack import image_scan
    from secstack.preview import load_stack
    from stacks.config import StackFileError
    from stacks.settings import SettingsError
    from stacks.settings.detection import severities_at_or_above

    try:
        settings, _ = load_stack(args.stack, args.stacks_dir)
    except StackFileError as exc:
        return fail(str(exc))
    except SettingsError as exc:
        return fail(f"stack {args.stack!r} has invalid config:\n  - " + "\n  - ".join(exc.problems))
    try:
        image = image_scan.check_image(args.image)
        if args.severity:
            severities = image_scan.parse_severities(args.severity)
        else:
            severities = severities_at_or_above(settings.scanning.severity_threshold)
        if args.from_report:
            try:
                text = args.from_report.read_text()
            except OSError as exc:
                raise image_scan.ScanError(f"{args.from_report}: cannot read the report ({exc.strerror})") from None
            report = image_scan.parse_report_text(text, str(args.from_report))
        else:
            cmd = image_scan.trivy_command(
                image_scan.find_trivy(),
                image,
                severities,
                ignore_unfixed=settings.scanning.ignore_unfixed,
                timeout=args.timeout,
                skip_db_update=args.skip_db_update,
                cache_dir=args.cache_dir,
            )
            report = image_scan.run_trivy(cmd)
    except image_scan.ScanError as exc:
        return fail(str(exc))
    found = image_scan.findings(report)
    print(image_scan.summary(image, found, severities))
    return VIOLATIONS if image_scan.gated(found, severities) else OK
