"""`secstack report <stack>`: the compliance report a reviewer reads (Markdown and self-contained HTML)."""
from __future__ import annotations

import argparse
from pathlib import Path

from secstack.cli import OK, bad_config, command, fail


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", help="stack name (stacks/Pulumi.<stack>.yaml)")
    p.add_argument("--format", choices=["md", "html", "all"], default="all", help="what to write (default: both)")
    p.add_argument("--out", type=Path, default=Path("out"), help="output directory; files go to <out>/<stack>/ (default out/)")
    p.add_argument("--stacks-dir", type=Path, default=None, help="directory of the stack files (default stacks/)")


@command("report", "compliance report: controls, levels, exemptions, PSS / CIS / MLPS 2.0 mapping", _configure)
def cmd_report(args: argparse.Namespace) -> int:
    from secstack import preview, report
    from stacks.config import StackFileError
    from stacks.settings import SettingsError

    try:
        report.load_controls()
        result = preview.run(args.stack, args.stacks_dir)
        built = report.build(result)
    except report.ControlsError as exc:
        return fail(str(exc))
    except StackFileError as exc:
        return fail(str(exc))
    except SettingsError as exc:
        return bad_config(args.stack, exc.problems)
    except preview.PreviewError as exc:
        return fail(f"the program failed: {exc}")
    formats = ("md", "html") if args.format == "all" else (args.format,)
    paths = report.write(built, args.out, formats)
    off = [c.id for c in built.controls if not c.level.enforced]
    expired = [e for e in built.exemptions if e.expired]
    print(f"{len(built.controls)} controls, {len(built.controls) - len(off)} enforced, {len(built.exemptions)} exemptions"
          f" ({len(expired)} expired)")
    for path in paths:
        print(f"wrote {path}")
    return OK
