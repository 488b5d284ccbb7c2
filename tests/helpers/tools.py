"""External CLI tools the suite runs (promtool, amtool). CI installs them and sets SECSTACK_CI=1, so there a
missing binary fails the test instead of skipping it."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        package = {"dot": "graphviz", "amtool": "prometheus-alertmanager"}.get(name, "prometheus")
        reason = f"{name} is not on PATH (Debian: apt-get install {package}; .ci/run installs it)"
        if os.environ.get("SECSTACK_CI") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
