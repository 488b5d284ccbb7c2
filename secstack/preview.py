"""Offline preview: run the real stacks/ program under the Pulumi SDK mock monitor and write what it declares.

This is a render of what `pulumi up` would declare, not a diff against live state: no cloud or cluster is read.
"""
from __future__ import annotations

import asyncio
import contextvars
import json
import os
import runpy
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pulumi
import yaml

import secstack.mock_outputs_alicloud  # noqa: F401 - registers computed Alibaba Cloud outputs
from secstack.capture import CapturingMonitor, Registration
from secstack.verdicts import CHECKERS, Verdict
from stacks.config import read_stack_file, stack_file, to_engine_config  # noqa: F401 - stack_file re-exported
from stacks.settings import Settings, load

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "stacks" / "__main__.py"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"

try:  # libyaml is ~10x faster; fall back to the pure-Python dumper where it is missing
    from yaml import CSafeDumper as Dumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as Dumper  # type: ignore[assignment]


class PreviewError(Exception):
    """The program failed for a reason other than config (reported with exit 2)."""


@dataclass
class Preview:
    stack: str
    settings: Settings
    resources: list[Registration]
    verdicts: list[Verdict] = field(default_factory=list)

    def of_type(self, type_token: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_token]

    def kubernetes_objects(self) -> list[tuple[Registration, dict]]:
        """Every Kubernetes object as it would be applied (secrets redacted)."""
        out = []
        for r in self.resources:
            if r.custom and r.type.startswith("kubernetes:") and r.type != HELM_RELEASE and not r.type.startswith("pulumi:providers"):
                obj = r.redacted_inputs()
                ordered = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
                ordered.update({k: v for k, v in obj.items() if k not in ordered})
                out.append((r, ordered))
        return out

    def helm_releases(self) -> list[dict]:
        releases = []
        for r in self.of_type(HELM_RELEASE):
            inputs = r.redacted_inputs()
            releases.append(
                {
                    "name": inputs.get("name", r.name),
                    "namespace": inputs.get("namespace"),
                    "chart": inputs.get("chart"),
                    "repo": (inputs.get("repositoryOpts") or {}).get("repo"),
                    "version": inputs.get("version"),
                    "values": inputs.get("values") or {},
                }
            )
        return releases

    def find(self, kind: str, name: Optional[str] = None, namespace: Optional[str] = None) -> list[dict]:
        """Kubernetes objects by kind (and name/namespace): the tests' main lens on a preview."""
        out = []
        for _, obj in self.kubernetes_objects():
            meta = obj.get("metadata") or {}
            if obj.get("kind") == kind and (name is None or meta.get("name") == name) and (namespace is None or meta.get("namespace") == namespace):
                out.append(obj)
        return out


def load_stack(stack: str, directory: Optional[Path] = None, reveal: Optional[Callable[[str, str], str]] = None) -> tuple[Settings, dict]:
    """Validate a stack file. Raises StackFileError or SettingsError before anything is declared."""
    raw = read_stack_file(stack_file(stack, directory) if directory else stack_file(stack), reveal)
    return load(raw), raw


def run(
    stack: str,
    directory: Optional[Path] = None,
    reveal: Optional[Callable[[str, str], str]] = None,
    progress: bool = False,
    checks: bool = True,
) -> Preview:
    settings, raw = load_stack(stack, directory, reveal)
    monitor = CapturingMonitor(progress=progress)
    # A fresh context per run: the SDK keeps its settings, root resource and config in context variables.
    contextvars.Context().run(_run_program, monitor, stack, raw, directory)
    preview = Preview(stack=stack, settings=settings, resources=monitor.registrations)
    if checks:
        import secstack.checks  # noqa: F401 - registers the checkers

        for check in CHECKERS:
            preview.verdicts.extend(check(preview))
    return preview


def _run_program(monitor: CapturingMonitor, stack: str, raw: dict, directory: Optional[Path]) -> None:
    # The thread's event loop is not per-context: remember the caller's and give it back afterwards.
    previous = getattr(asyncio.get_event_loop_policy(), "_local", None)
    previous = getattr(previous, "_loop", None)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi.runtime.set_mocks(monitor.mocks, project="secstack", stack=stack, preview=True, monitor=monitor)
        config, secret_keys = to_engine_config(raw)
        pulumi.runtime.set_all_config(config, secret_keys)
        if directory is not None:
            import stacks.config as stack_config

            stack_config.STACKS_DIR = directory
        try:
            runpy.run_path(str(PROGRAM), run_name="__main__")
            loop.run_until_complete(pulumi.runtime.stack.wait_for_rpcs())
        except pulumi.RunError as exc:
            raise PreviewError(str(exc)) from None
    finally:
        if directory is not None:
            import stacks.config as stack_config

            stack_config.STACKS_DIR = ROOT / "stacks"
        loop.close()
        asyncio.set_event_loop(previous)


def manifest_filename(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or '_cluster'}.{obj.get('kind', 'Unknown').lower()}.{meta.get('name', 'unnamed')}.yaml"


def _io(jobs: list[Callable[[], object]]) -> None:
    """File creation and removal are system calls that release the GIL: a few threads overlap their latency."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def write(preview: Preview, out_dir: Path) -> Path:
    target = out_dir / preview.stack
    manifests = target / "manifests"
    stale = target / f".manifests-stale-{os.getpid()}"
    if manifests.exists():
        manifests.rename(stale)  # cleared below, alongside the writes
    manifests.mkdir(parents=True)
    header = {
        "stack": preview.stack,
        "project": "secstack",
        "environment": preview.settings.environment,
        "note": "a render of what `pulumi up` would declare; no diff against live state",
        "counts": dict(sorted(Counter(r.type for r in preview.resources).items())),
    }
    # One resource per line: greppable, diffable, and json's C encoder only runs without `indent`.
    lines = [
        json.dumps(
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "custom": r.custom,
                "parent": r.parent or None,
                "dependencies": r.dependencies,
                "inputs": r.redacted_inputs(),
                "options": r.options,
            },
            sort_keys=True,
        )
        for r in preview.resources
    ]
    head = json.dumps(header, indent=1, sort_keys=True)
    (target / "plan.json").write_text(head[:-2] + ',\n "resources": [\n' + ",\n".join(lines) + "\n ]\n}\n")
    files: dict[Path, str] = {}
    seen: Counter = Counter()
    for _, obj in preview.kubernetes_objects():
        name = manifest_filename(obj)
        seen[name] += 1
        if seen[name] > 1:
            name = name.replace(".yaml", f".{seen[name]}.yaml")
        files[manifests / name] = yaml.dump(obj, Dumper=Dumper, sort_keys=False)
    releases = {"apiVersion": "secstack.io/v1", "kind": "HelmReleaseList", "items": preview.helm_releases()}
    files[manifests / "helm-releases.yaml"] = yaml.dump(releases, Dumper=Dumper, sort_keys=False)
    jobs: list[Callable[[], object]] = [lambda p=path, t=text: p.write_text(t) for path, text in files.items()]
    if stale.exists():
        jobs += [lambda p=p: p.unlink() for p in stale.iterdir()]
    _io(jobs)
    if stale.exists():
        shutil.rmtree(stale)
    return target


def tree(preview: Preview) -> str:
    """component -> children, with type and name, and counts per type."""
    children: dict[str, list[Registration]] = {}
    for r in preview.resources:
        children.setdefault(r.parent, []).append(r)
    lines: list[str] = []

    def walk(urn: str, depth: int) -> None:
        kids = children.get(urn, [])
        components = [k for k in kids if not k.custom]
        customs = [k for k in kids if k.custom]
        for k in components:
            lines.append(f"{'  ' * depth}{k.type}  {k.name}  ({_count(k.urn, children)} resources)")
            walk(k.urn, depth + 1)
        for type_, count in sorted(Counter(k.type for k in customs).items()):
            names = [k.name for k in customs if k.type == type_]
            shown = ", ".join(names[:4]) + (f", … +{len(names) - 4}" if len(names) > 4 else "")
            lines.append(f"{'  ' * depth}{type_} ×{count}: {shown}")

    roots = {r.parent for r in preview.resources} - {r.urn for r in preview.resources}
    for root in sorted(roots):
        walk(root, 0)
    lines.append(f"{len(preview.resources)} resources ({sum(r.custom for r in preview.resources)} custom, "
                 f"{sum(not r.custom for r in preview.resources)} components)")
    return "\n".join(lines)


def _count(urn: str, children: dict[str, list[Registration]]) -> int:
    return sum(1 + _count(k.urn, children) for k in children.get(urn, []))
