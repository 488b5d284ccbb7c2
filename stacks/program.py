"""Turns config into settings and settings into components."""
from __future__ import annotations

import pulumi

from components.platform import SecurityPlatform
from stacks.args import platform_args
from stacks.config import StackFileError, read_engine_config, read_stack_file, stack_file
from stacks.settings import Settings, SettingsError, check_secret_values, load


def settings_from_engine() -> Settings:
    raw = read_engine_config()
    problems = []
    path = stack_file(pulumi.get_stack())
    if path.exists():
        # The engine only says a whole key is secret; the stack file says which leaves were `secure:`.
        try:
            file_raw = read_stack_file(path)
            problems += check_secret_values(file_raw.get("secstack:secretValues") or {})
        except StackFileError as exc:
            problems.append(str(exc))
    try:
        settings = load(raw)
    except SettingsError as exc:
        problems += exc.problems
        settings = None
    if problems:
        raise SettingsError(problems)
    return settings


def main() -> None:
    try:
        settings = settings_from_engine()
    except SettingsError as exc:
        # A RunError is reported by the engine as a message, without a Python traceback.
        raise pulumi.RunError("invalid stack config:\n  " + "\n  ".join(exc.problems)) from None
    platform = SecurityPlatform("secstack", platform_args(settings, pulumi.get_stack()))
    pulumi.export("environment", settings.environment)
    pulumi.export("namespaces", platform.namespaces)
