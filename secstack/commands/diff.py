"""`secstack diff A B`: the security-relevant differences between two stacks, for promotion reviews."""
from __future__ import annotations

import argparse
import json

from secstack.cli import OK, command, fail


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="first stack, e.g. dev")
    p.add_argument("b", help="second stack, e.g. prod")
    p.add_argument("--format", choices=["text", "json"], default="text")


def _render(stack: str):
    from secstack import preview

    return preview.run(stack, checks=False)


@command("diff", "security posture differences between two stacks", _configure)
def cmd_diff(args: argparse.Namespace) -> int:
    from secstack.posture import diff, posture
    from stacks.config import StackFileError
    from stacks.settings import SettingsError

    try:
        a, b = posture(_render(args.a)), posture(_render(args.b))
    except StackFileError as exc:
        return fail(str(exc))
    except SettingsError as exc:
        return fail("invalid config:\n  - " + "\n  - ".join(exc.problems))
    rows = diff(a, b)
    if args.format == "json":
        print(json.dumps({"a": args.a, "b": args.b, "differences": rows}, indent=2, default=str))
        return OK
    width = max([len(r["key"]) for r in rows] + [7])
    print(f"{'setting':<{width}}  {args.a:<24}  {args.b}")
    for r in rows:
        print(f"{r['key']:<{width}}  {str(r['a']):<24}  {r['b']}")
    print(f"{len(rows)} differences between {args.a} and {args.b}")
    return OK
