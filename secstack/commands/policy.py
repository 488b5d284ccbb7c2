"""`secstack policy test` (every rule's gator suite) and `secstack policy check PATH...` (manifests against a
bundle or a stack's constraints). Exit 0 fine, 1 deny-level violations or failing cases, 2 bad input."""
from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
from pathlib import Path
from typing import Iterator

import yaml

from secstack.cli import OK, VIOLATIONS, bad_config, command, fail

YAML_SUFFIXES = (".yaml", ".yml")
# libyaml's C parser when PyYAML has it (about 10x faster on large manifests); same safe constructors.
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class InputError(Exception):
    """A manifest file cannot be used; the message names the file (and document)."""


def _configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="policy_command", required=True, metavar="{test,check}")
    test = sub.add_parser("test", help="run every rule's suite.yaml (like `gator verify`)")
    test.add_argument("--rules-dir", type=Path, default=None, help="rule folders (default policies/gatekeeper)")
    test.add_argument("--verbose", "-v", action="store_true", help="print every case, not only failures")
    check = sub.add_parser("check", help="evaluate manifests (files or directories) against Gatekeeper constraints")
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="YAML files or directories (recursive)")
    source = check.add_mutually_exclusive_group()
    source.add_argument("--bundle", help="check one bundle alone, every rule at deny: pss-baseline, pss-restricted, general")
    source.add_argument("--stack", help="check with that stack's constraints (parameters, exemptions, enforcement)")
    check.add_argument("--format", choices=("text", "json"), default="text")


# ------------------------------------------------------------------------------------------------------ inputs


def manifest_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in YAML_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    return files


def documents(path: Path) -> Iterator[tuple[int, dict]]:
    """(index, object) for every Kubernetes object in a multi-document YAML file; `kind: List` is expanded."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    index = 0  # the document being parsed when an error surfaces
    try:
        for doc in yaml.load_all(text, Loader=SafeLoader):
            if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
                yield from ((index, item) for item in doc["items"] if isinstance(item, dict))
            elif isinstance(doc, dict):
                yield index, doc
            elif doc is not None:
                raise InputError(f"{path}: document {index}: expected a Kubernetes object (a mapping), got {type(doc).__name__}")
            index += 1
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(f"{path}: document {index}: malformed YAML{where}: {getattr(exc, 'problem', None) or exc}") from None


# ------------------------------------------------------------------------------------------------------ check


def constraints_for(args: argparse.Namespace):
    from secstack import gatekeeper

    if args.stack:
        try:
            module = importlib.import_module("secstack.admission_constraints")
        except ModuleNotFoundError as exc:
            if exc.name != "secstack.admission_constraints":
                raise
            raise InputError("--stack needs the admission constraints (secstack.admission_constraints), which this "
                              "checkout does not have; use --bundle NAME instead") from None
        return module.stack_constraints(args.stack)
    bundle = args.bundle
    if bundle:
        return gatekeeper.bundle_constraints(bundle)
    return [c for b in ("pss-restricted", "general") for c in gatekeeper.bundle_constraints(b)]


def _check(args: argparse.Namespace) -> int:
    from secstack import gatekeeper

    try:
        if args.stack:
            return _check_stack(args)
        constraints = constraints_for(args)
        objects = _objects(args)
    except (InputError, gatekeeper.GatekeeperError) as exc:
        return fail(str(exc))
    return _report(args, constraints, objects)


def _objects(args: argparse.Namespace) -> list[tuple[Path, int, dict]]:
    files = manifest_files(args.paths)
    from secstack import gatekeeper

    workers = min(os.cpu_count() or 1, gatekeeper.PARALLEL_WORKERS)
    if workers < 2 or len(files) < gatekeeper.PARALLEL_MIN_OBJECTS or "fork" not in multiprocessing.get_all_start_methods():
        return [(path, index, obj) for path in files for index, obj in documents(path)]
    # Many files: parse them in forked workers; the first unusable file (in file order) is reported, as serially.
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parsed = pool.map(_parse_file, files, chunksize=max(1, len(files) // (workers * 4)))
    for result in parsed:
        if isinstance(result, InputError):
            raise result
    return [(path, index, obj) for path, result in zip(files, parsed) for index, obj in result]


def _parse_file(path: Path) -> "list[tuple[int, dict]] | InputError":
    try:
        return list(documents(path))
    except InputError as exc:
        return exc


def _check_stack(args: argparse.Namespace) -> int:
    # Stack settings are imported only here: they are slow to import and `--bundle` never needs them.
    from secstack import gatekeeper
    from stacks.config import StackFileError
    from stacks.settings import SettingsError

    try:
        constraints = constraints_for(args)
        objects = _objects(args)
    except (InputError, gatekeeper.GatekeeperError, StackFileError) as exc:
        return fail(str(exc))
    except SettingsError as exc:
        return bad_config(args.stack, exc.problems)
    return _report(args, constraints, objects)


def _report(args: argparse.Namespace, constraints: list, objects: list[tuple[Path, int, dict]]) -> int:
    from secstack import gatekeeper

    engine = gatekeeper.Engine()
    found = []
    try:
        for constraint in constraints:
            engine.check_parameters(constraint)
        results = engine.evaluate_all([obj for _, _, obj in objects], constraints)
        for (path, index, _), violations in zip(objects, results):
            found += [(path, index, violation) for violation in violations]
    except gatekeeper.GatekeeperError as exc:
        return fail(str(exc))
    denied = [f for f in found if f[2].enforcement_action == "deny"]
    if args.format == "json":
        print(json.dumps({
            "objects": len(objects),
            "constraints": len(constraints),
            "denied": len(denied),
            "violations": [
                {"file": str(path), "document": index, "kind": v.kind, "constraint": v.constraint,
                 "enforcementAction": v.enforcement_action, "objectKind": v.object_kind, "namespace": v.namespace,
                 "name": v.name, "message": v.message}
                for path, index, v in found
            ],
        }, indent=2))
    else:
        for path, index, v in found:
            where = f"{v.object_kind} {v.namespace + '/' if v.namespace else ''}{v.name}"
            print(f"{v.enforcement_action.upper():6} {path}#{index} {where}: [{v.constraint}] {v.message}")
        print(f"{len(objects)} objects, {len(constraints)} constraints: {len(denied)} denied, "
              f"{len(found) - len(denied)} warn/dryrun")
    return VIOLATIONS if denied else OK


# ------------------------------------------------------------------------------------------------------ test


def _test(args: argparse.Namespace) -> int:
    from secstack import gatekeeper
    from secstack.policy_suites import run_suite, suite_paths

    directory = args.rules_dir or gatekeeper.RULES_DIR
    try:
        engine = gatekeeper.Engine(directory=directory)
        paths = suite_paths(Path(directory))
    except (gatekeeper.GatekeeperError, OSError) as exc:
        return fail(str(exc))
    failed = total = passed = 0
    for path in paths:
        rule = path.parent.name
        if not path.exists():
            print(f"FAIL {rule}: no suite.yaml")
            failed += 1
            continue
        try:
            results = run_suite(path, engine)
        except (gatekeeper.GatekeeperError, KeyError, TypeError) as exc:
            print(f"FAIL {rule}: cannot run suite: {exc}")
            failed += 1
            continue
        bad = [r for r in results if not r.ok]
        total += len(results)
        failed += len(bad)
        passed += len(results) - len(bad)
        print(f"{'ok  ' if not bad else 'FAIL'} {rule}: {len(results) - len(bad)}/{len(results)} cases")
        for r in results if args.verbose else bad:
            status = "ok" if r.ok else "FAIL"
            print(f"    {status} {r.test}/{r.case}" + "".join(f"\n        {p}" for p in r.problems))
    print(f"{len(paths)} suites, {total} cases")
    print(f"{passed} passed, {failed} failed")
    return VIOLATIONS if failed else OK


@command("policy", "Gatekeeper policy library: run the rule suites, check manifests", _configure)
def cmd_policy(args: argparse.Namespace) -> int:
    return _test(args) if args.policy_command == "test" else _check(args)
