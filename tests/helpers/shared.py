"""The one way tests find ../shared (upstream CRDs, chart values, conformance data).

Set SECSTACK_SHARED to point elsewhere. When the folder is absent the tests that need it skip with this reason;
CI always has it (and sets SECSTACK_REQUIRE_SHARED=1 so that a missing folder fails instead of skipping).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return Path(os.environ.get("SECSTACK_SHARED", REPO.parent / "shared")).resolve()


def require_shared(*parts: str) -> Path:
    path = shared_dir().joinpath(*parts)
    if not path.exists():
        reason = f"upstream reference data not found at {path} (set SECSTACK_SHARED to the shared/ folder)"
        if os.environ.get("SECSTACK_REQUIRE_SHARED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path
