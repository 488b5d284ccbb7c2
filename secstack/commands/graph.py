"""`secstack graph <stack>`: the stack's components and security relations as SVG (Graphviz), DOT or Mermaid."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from secstack.cli import OK, bad_config, command, fail


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("stack", help="stack name (stacks/Pulumi.<stack>.yaml)")
    p.add_argument("--format", choices=["svg", "dot", "mermaid"], default="svg",
                   help="svg needs Graphviz `dot`; without it the DOT text is written instead (default svg)")
    p.add_argument("--out", type=Path, default=None, help="file to write (default: standard output)")
    p.add_argument("--stacks-dir", type=Path, default=None, help="directory of the stack files (default stacks/)")


@command("graph", "picture of the stack: namespaces, the policies protecting them, callers, secrets and keys", _configure)
def cmd_graph(args: argparse.Namespace) -> int:
    from secstack import graph, preview
    from stacks.config import StackFileError
    from stacks.settings import SettingsError

    try:
        g = graph.build(preview.run(args.stack, args.stacks_dir, checks=False))
    except StackFileError as exc:
        return fail(str(exc))
    except SettingsError as exc:
        return bad_config(args.stack, exc.problems)
    except preview.PreviewError as exc:
        return fail(f"the program failed: {exc}")
    if args.format == "mermaid":
        text = graph.to_mermaid(g)
    elif args.format == "dot":
        text = graph.to_dot(g)
    else:
        try:
            text = graph.to_svg(g)
        except graph.GraphvizMissing as exc:
            print(f"warning: {exc}; writing DOT text instead", file=sys.stderr)
            text = graph.to_dot(g)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out} ({len(g.nodes)} nodes, {len(g.edges)} edges)", file=sys.stderr)
    return OK
