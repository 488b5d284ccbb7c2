"""Preview cost vs bare Pulumi SDK registration of the same resources, at 10, 100 and 500 teams.

Each measurement is the best of --repeat fresh processes (clean memory, clean SDK state; imports not timed):
  preview  `secstack preview` on a synthetic prod stack: settings validation, the program, capture, plan.json,
           manifests/ and policy verdicts (as a user runs it); `render` is the same without the verdicts;
  bare     the same registrations (type, name, inputs) replayed as plain `pulumi.CustomResource`s under the
           SDK's stock MockMonitor — the floor any Pulumi program of that size pays;
  program  the same stacks/ program under the SDK's stock MockMonitor (typed SDK classes, no capture, no files,
           no verdicts) — what secstack's preview machinery adds is preview/program;
  bare+graph  the same, keeping each resource's parent and dependencies (the ordering the stack needs) — the
           floor of this resource graph, before typed SDK classes and secstack's own work.
Prints resources, seconds, peak RSS and the ratios, all from this one run.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def synthetic_stack(teams: int) -> dict:
    """The committed prod stack (its 3 teams, keys, secrets and add-ons) grown to `teams` teams."""
    base = yaml.safe_load((ROOT / "stacks" / "Pulumi.prod.yaml").read_text())
    team_list = list(base["config"]["secstack:teams"])
    for i in range(max(0, teams - len(team_list))):
        caller = [f"team-{i - 1}/api-{i - 1}"] if i else []
        service = {"name": f"api-{i}", "port": 8080, "allowFrom": caller}
        if i % 2 == 0:
            service["public"] = True
            service["jwtRules"] = [{"paths": ["/api/*"], "methods": ["GET"], "scopes": ["read"]}]
        team_list.append(
            {
                "name": f"team-{i}",
                "owner": f"lead-{i}@shop.example.com",
                "namespaces": [f"team-{i}"],
                "groups": {"viewers": [f"team-{i}-devs"], "deployers": [f"team-{i}-ci"]},
                "services": [service],
            }
        )
    base["config"]["secstack:teams"] = team_list
    return base


def worker_preview(teams: int, directory: Path, checks: bool) -> dict:
    from secstack import preview
    import secstack.checks  # noqa: F401 - imports are not timed, as in the other workers (which import pulumi)
    import stacks.program  # noqa: F401

    (directory / "Pulumi.bench.yaml").write_text(yaml.safe_dump(synthetic_stack(teams)))
    started = time.perf_counter()
    result = preview.run("bench", directory, checks=checks)
    preview.write(result, directory / "out")
    seconds = time.perf_counter() - started
    dump = [
        {"type": r.type, "name": r.name, "custom": r.custom, "inputs": r.plain_inputs(), "urn": r.urn, "parent": r.parent, "dependencies": r.dependencies}
        for r in result.resources
    ]
    (directory / "registrations.json").write_text(json.dumps(dump))
    return {"resources": len(result.resources), "seconds": seconds}


def worker_program(teams: int, directory: Path) -> dict:
    """The same stacks/ program under the SDK's stock MockMonitor: no capture, no files, no verdicts."""
    import contextvars
    import runpy

    import pulumi

    import stacks.program  # noqa: F401 - imports are not timed
    from secstack.preview import PROGRAM
    from stacks.config import read_stack_file, to_engine_config

    (directory / "Pulumi.bench.yaml").write_text(yaml.safe_dump(synthetic_stack(teams)))

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args):
            return f"{args.name}-id", args.inputs

        def call(self, args):
            return {}, None

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        pulumi.runtime.set_mocks(Mocks(), project="secstack", stack="bench", preview=True)
        pulumi.runtime.set_all_config(*to_engine_config(read_stack_file(directory / "Pulumi.bench.yaml")))
        import stacks.config as stack_config

        stack_config.STACKS_DIR = directory
        runpy.run_path(str(PROGRAM), run_name="__main__")
        loop.run_until_complete(pulumi.runtime.stack.wait_for_rpcs())

    started = time.perf_counter()
    contextvars.Context().run(run)
    return {"resources": None, "seconds": time.perf_counter() - started}


def worker_bare(directory: Path, graph: bool) -> dict:
    """Replay the registrations as plain resources; with `graph`, keep their parents and dependencies too."""
    import pulumi

    registrations = json.loads((directory / "registrations.json").read_text())

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args):
            return f"{args.name}-id", args.inputs

        def call(self, args):
            return {}, None

    started = time.perf_counter()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_mocks(Mocks(), project="secstack", stack="bench", preview=True)
    made: dict[str, pulumi.Resource] = {}
    for i, r in enumerate(registrations):
        opts = None
        if graph:
            opts = pulumi.ResourceOptions(
                parent=made.get(r["parent"]), depends_on=[made[d] for d in r["dependencies"] if d in made]
            )
        name = r["name"] if graph else f"{r['name']}-{i}"
        if r["custom"]:
            made[r["urn"]] = pulumi.CustomResource(r["type"], name, r["inputs"], opts)
        else:
            made[r["urn"]] = pulumi.ComponentResource(r["type"], name, None, opts)
    loop.run_until_complete(pulumi.runtime.stack.wait_for_rpcs())
    return {"resources": len(registrations), "seconds": time.perf_counter() - started}


def measure(mode: str, teams: int, directory: Path, repeat: int) -> dict:
    """Best of `repeat` fresh processes (these machines are noisy; the minimum is the least disturbed run)."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", mode, "--teams", str(teams), "--dir", str(directory)],
            capture_output=True, text=True, check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda r: r["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", choices=["preview", "render", "program", "bare", "bare-graph"])
    parser.add_argument("--teams", type=int, nargs="*", default=[10, 100, 500])
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per measurement; the best is kept")
    args = parser.parse_args()
    if args.worker:
        if args.worker == "program":
            result = worker_program(args.teams[0], args.dir)
        elif args.worker in ("bare", "bare-graph"):
            result = worker_bare(args.dir, graph=args.worker == "bare-graph")
        else:
            result = worker_preview(args.teams[0], args.dir, checks=args.worker == "preview")
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    rows = []
    for teams in args.teams:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            full = measure("preview", teams, directory, args.repeat)
            render = measure("render", teams, directory, args.repeat)
            bare = measure("bare", teams, directory, args.repeat)
            graph = measure("bare-graph", teams, directory, args.repeat)
            program = measure("program", teams, directory, args.repeat)
        rows.append((teams, full, render, bare, graph, program))
    print(f"{'teams':>5} {'resources':>9} {'preview s':>9} {'render s':>8} {'program s':>9} {'bare s':>7} {'bare+graph s':>12} "
          f"{'preview/bare':>12} {'preview/program':>15} {'ms/res':>7} {'peak RSS MiB':>12}")
    for teams, full, render, bare, graph, program in rows:
        print(
            f"{teams:>5} {full['resources']:>9} {full['seconds']:>9.2f} {render['seconds']:>8.2f} {program['seconds']:>9.2f} "
            f"{bare['seconds']:>7.2f} {graph['seconds']:>12.2f} {full['seconds'] / bare['seconds']:>12.2f} "
            f"{full['seconds'] / program['seconds']:>15.2f} {1000 * full['seconds'] / full['resources']:>7.2f} {full['peak_rss_mib']:>12.0f}"
        )
    first, last = rows[0], rows[-1]
    scale = (last[1]["seconds"] / last[1]["resources"]) / (first[1]["seconds"] / first[1]["resources"])
    print(f"per-resource cost at {last[0]} teams / at {first[0]} teams: {scale:.2f}")


if __name__ == "__main__":
    main()
