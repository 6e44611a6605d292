"""The template's releases: PEP 440 tags, each with its CHANGELOG.md section.

A clone may come without tags; the commit that added a release's CHANGELOG
heading is that release, so the history alone is enough to find it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.project import ROOT

HEADING = re.compile(
    r"^## \[(\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?)\] - \d{4}-\d{2}-\d{2}$", re.MULTILINE
)


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def released_versions() -> list[str]:
    """Every release in CHANGELOG.md, newest first."""
    return HEADING.findall((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))


def release_commit(version: str) -> str:
    """The commit of a release: its tag, or else the commit that added its heading."""
    tagged = git("tag", "--list", version)
    if tagged:
        return git("rev-list", "-n", "1", version)
    added = git("log", "--format=%H", "-S", f"## [{version}] - ", "--", "CHANGELOG.md")
    if not added:
        raise LookupError(f"release {version} is neither tagged nor in the history of CHANGELOG.md")
    return added.splitlines()[-1]
