"""`secstack` command line. Exit codes: 0 fine, 1 policy violations, 2 bad input."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

OK, VIOLATIONS, BAD_INPUT = 0, 1, 2

# Subcommand registry: name -> (configure parser, handler). Each capability adds its own commands.
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help_text: str, configure: Callable[[argparse.ArgumentParser], None]):
    def register(handler: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (help_text, configure, handler)
        return handler

    return register


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return BAD_INPUT


def bad_config(stack: str, problems: list[str]) -> int:
    """Every config problem of a stack, one per line, before anything is declared (exit 2)."""
    print(f"error: stack {stack!r} has invalid config:", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return BAD_INPUT


def _preview_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", nargs="?", default="dev", help="stack name (stacks/Pulumi.<stack>.yaml); default dev")
    p.add_argument("--out", type=Path, default=Path("out"), help="output directory (default out/)")
    p.add_argument("--stacks-dir", type=Path, default=None, help="directory of the stack files (default stacks/)")
    p.add_argument("--quiet", action="store_true", help="do not print the resource tree")


@command("preview", "render the stack offline: plan, manifests and policy verdicts", _preview_args)
def cmd_preview(args: argparse.Namespace) -> int:
    from secstack import __version__, preview, verdicts
    from stacks.config import StackFileError
    from stacks.settings import SettingsError

    started = time.monotonic()
    try:
        result = preview.run(args.stack, args.stacks_dir, progress=True)
    except StackFileError as exc:
        return fail(str(exc))
    except SettingsError as exc:
        return bad_config(args.stack, exc.problems)
    except preview.PreviewError as exc:
        return fail(f"the program failed: {exc}")
    target = preview.write(result, args.out)
    verdicts.write_json(result.verdicts, target / "verdicts.json", args.stack)
    verdicts.write_sarif(result.verdicts, target / "verdicts.sarif", __version__)
    if not args.quiet:
        print(preview.tree(result))
    print(verdicts.summary_table(result.verdicts))
    print(
        f"wrote {target}/plan.json, manifests/ ({len(result.kubernetes_objects())} objects, "
        f"{len(result.helm_releases())} Helm releases), verdicts.json, verdicts.sarif "
        f"in {time.monotonic() - started:.1f}s"
    )
    print("note: offline render of what `pulumi up` would declare; no diff against live state")
    return VIOLATIONS if verdicts.has_mandatory(result.verdicts) else OK


def build_parser() -> argparse.ArgumentParser:
    _load_commands()
    parser = argparse.ArgumentParser(prog="secstack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, configure, handler) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(handler=handler)
    return parser


def _load_commands() -> None:
    """Import the modules that register subcommands (kept lazy so `secstack --help` stays fast)."""
    import importlib

    for module in ("secstack.commands",):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, which is our bad-input code too
        return int(exc.code or 0)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # Run through the importable module so that subcommands register where `main` looks for them.
    from secstack.cli import main as _main

    sys.exit(_main())
