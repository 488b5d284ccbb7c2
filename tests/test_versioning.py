"""One version everywhere, and a changelog entry for it."""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import secstack

ROOT = Path(__file__).resolve().parent.parent
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def test_version_is_semantic_and_the_same_everywhere():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert SEMVER.match(version)
    assert secstack.__version__ == version
    assert json.loads((ROOT / "components" / "schema.json").read_text())["version"] == version


def test_changelog_follows_keep_a_changelog_and_lists_this_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    versions = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.M)
    assert versions[0] == ("Unreleased", "")
    assert versions[1][0] == secstack.__version__ and versions[1][1], "the current version needs a dated entry"
    release = text.split(f"## [{secstack.__version__}]")[1].split("\n## [")[0]
    assert "### Added" in release and release.count("\n- ") >= 10
    assert (ROOT / "docs" / "compatibility.md").exists()
