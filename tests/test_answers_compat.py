"""Every answer a released project holds still means what it meant, or a migration moves it.

`copier update` reads the answers file that an earlier release wrote. A
question renamed or removed, a choice whose value is gone, or a question whose
type changed would leave that answer meaning nothing (or something else), and
the update would quietly make another project. Each such change needs an entry
in copier.yml's `_migrations` and in MIGRATED below, with a test that updates a
project of the release before it.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.conftest import choice_values, load_copier_config, questions
from tests.releases import git, release_commit, released_versions

# (release, question) pairs whose answers a `_migrations` entry rewrites. None yet:
# since 0.1.0 questions and choices have only been added.
MIGRATED: set[tuple[str, str]] = set()


def released_questions(version: str) -> dict[str, dict[str, Any]]:
    text = git("show", f"{release_commit(version)}:copier.yml")
    config: dict[str, Any] = yaml.safe_load(text)
    return {name: spec for name, spec in config.items() if not name.startswith("_")}


def test_there_is_a_release() -> None:
    assert released_versions(), "CHANGELOG.md names no release"


@pytest.mark.parametrize("version", released_versions())
def test_every_answer_of_a_release_keeps_its_meaning(version: str) -> None:
    now = questions()
    for name, old in released_questions(version).items():
        if (version, name) in MIGRATED:
            continue
        hint = f"add a _migrations entry for projects of {version} and list it in MIGRATED"
        assert name in now, f"question {name!r} of {version} is gone; {hint}"
        new = now[name]
        assert new.get("type", "str") == old.get("type", "str"), f"{name!r} changed type; {hint}"
        assert bool(new.get("multiselect")) == bool(old.get("multiselect")), (
            f"{name!r} changed between one answer and several; {hint}"
        )
        if "choices" in old:
            gone = set(map(str, choice_values(old))) - set(map(str, choice_values(new)))
            assert not gone, f"{name!r} no longer offers {sorted(gone)} of {version}; {hint}"


def test_migrations_need_no_trust_unless_they_exist() -> None:
    """A plain `copier update` must not ask for --trust: only migrations would."""
    migrations = load_copier_config().get("_migrations", [])
    assert bool(migrations) == bool(MIGRATED), (
        "_migrations in copier.yml and MIGRATED in this test disagree"
    )
    assert "_tasks" not in load_copier_config()
    assert "_jinja_extensions" not in load_copier_config()
