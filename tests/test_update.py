"""`copier update` keeps the owner's edits and brings in the template's changes.

A project is copied, committed, edited the way owners edit (a changed
handler, an added route, an edited setting) and committed again, then
updated: to a newer template, or to the same template with other answers.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml

from tests.conftest import choice_values, questions
from tests.project import CHECKS, ROOT, apply_env, lowest_python, project_env
from tests.releases import git, release_commit, released_versions

ANSWERS_FILE = ".copier-answers.yml"
PACKAGE = "realtime_app"  # from the default project name

# (file in the project, text the template has, text the owner puts there): each edit
# must find its text.
OWNER_EDITS = [
    # An edited setting, a longer reconnect delay for a busy deployment, and its test.
    (f"src/{PACKAGE}/settings.py", "retry_ms: int = 3000", "retry_ms: int = 5000"),
    ("tests/test_sse.py", "DEFAULT_RETRY_MS = 3000", "DEFAULT_RETRY_MS = 5000"),
    # A changed handler: the app's lifespan.
    (
        f"src/{PACKAGE}/app.py",
        "        await hub.start()\n        try:\n",
        '        await hub.start()\n        app.state.started_by = "owner"\n        try:\n',
    ),
    # An added route, and its handler.
    (
        f"src/{PACKAGE}/app.py",
        '        Route("/", index),\n',
        '        Route("/", index),\n        Route("/owner", owner),\n',
    ),
    (
        f"src/{PACKAGE}/app.py",
        "            await hub.close()\n",
        "            await hub.close()\n\n"
        "    async def owner(request: Request) -> Response:\n"
        '        return Response(b\'{"owner": true}\', media_type="application/json")\n',
    ),
]


def edit_like_an_owner(project: Path) -> None:
    for name, old, new in OWNER_EDITS:
        path = project / name
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{name} no longer has exactly one {old!r}"
        path.write_text(text.replace(old, new), encoding="utf-8")


def commit_all(project: Path, message: str) -> None:
    git("add", "--all", cwd=project)
    identity = ("-c", "user.name=Owner", "-c", "user.email=owner@example.com")
    git(*identity, "commit", "-qm", message, cwd=project)


def copy(src: Path, dst: Path, ref: str, answers: Mapping[str, Any] | None = None) -> Path:
    copier.run_copy(
        str(src),
        dst,
        data=dict(answers or {}),
        defaults=True,
        vcs_ref=ref,
        unsafe=False,
        quiet=True,
    )
    return dst


def owned_project(src: Path, dst: Path, ref: str, answers: Mapping[str, Any] | None = None) -> Path:
    """A project as its owner keeps it: copied, committed, edited, committed."""
    copy(src, dst, ref, answers)
    git("init", "-q", cwd=dst)
    commit_all(dst, "Copy the template")
    edit_like_an_owner(dst)
    commit_all(dst, "Our own changes")
    return dst


def update(project: Path, ref: str, answers: Mapping[str, Any] | None = None) -> None:
    copier.run_update(
        project,
        data=dict(answers or {}),
        defaults=True,
        overwrite=True,
        vcs_ref=ref,
        unsafe=False,
        conflict="rej",
        quiet=True,
    )


def project_files(project: Path) -> set[Path]:
    skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
    return {
        path.relative_to(project)
        for path in project.rglob("*")
        if path.is_file() and not skip & set(path.relative_to(project).parts)
    }


def assert_no_conflicts(project: Path) -> None:
    leftovers = [path for path in project_files(project) if path.suffix == ".rej"]
    assert not leftovers, f"update left rejected hunks: {leftovers}"
    for path in project_files(project):
        text = (project / path).read_text(encoding="utf-8", errors="replace")
        assert "<<<<<<<" not in text, f"conflict markers in {path}"


def assert_same_files(updated: Path, expected: Path) -> None:
    """Every file the same, but the answers file, which records how each was made."""
    assert project_files(updated) == project_files(expected)
    for path in project_files(expected) - {Path(ANSWERS_FILE)}:
        assert filecmp.cmp(updated / path, expected / path, shallow=False), f"{path} differs"


def template_clone(tmp_path: Path) -> Path:
    """This repository's HEAD, plus its uncommitted changes, as a repository of its own."""
    clone = tmp_path / "template"
    git("clone", "-q", str(ROOT), str(clone))
    changed = git("status", "--porcelain", "-z", "--no-renames", "--untracked-files=all")
    for entry in filter(None, changed.split("\0")):
        path = entry[3:]
        if (ROOT / path).is_file():
            (clone / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, clone / path)
        elif (clone / path).exists():
            (clone / path).unlink()
    if changed:
        commit_all(clone, "Uncommitted changes of the work tree")
    return clone


def test_an_update_brings_template_changes_and_keeps_the_owners(tmp_path: Path) -> None:
    clone = template_clone(tmp_path)
    project = owned_project(clone, tmp_path / "project", "HEAD")
    # The next template release changes a core module and adds a file.
    hub = clone / "template" / "src" / "{{ package_name }}" / "realtime" / "hub.py"
    hub.write_text(hub.read_text(encoding="utf-8") + "\n\nHUB_RELEASE = 2\n", encoding="utf-8")
    (clone / "template" / "NOTICE").write_text("A file the next release adds.\n", encoding="utf-8")
    commit_all(clone, "The next release")

    update(project, "HEAD")

    assert_no_conflicts(project)
    expected = owned_project(clone, tmp_path / "expected", "HEAD")
    assert_same_files(project, expected)
    assert "HUB_RELEASE = 2" in (project / "src" / PACKAGE / "realtime" / "hub.py").read_text()


@pytest.mark.full
@pytest.mark.timeout(1800)
def test_an_update_from_the_last_release_keeps_the_owners_edits_and_passes_checks(
    tmp_path: Path, uv: str
) -> None:
    release = release_commit(released_versions()[0])
    project = owned_project(ROOT, tmp_path / "project", release)

    update(project, "HEAD")

    assert_no_conflicts(project)
    expected = owned_project(ROOT, tmp_path / "expected", "HEAD")
    assert_same_files(project, expected)
    env = apply_env(project_env(lowest_python(project)))
    for program, *args in CHECKS:
        result = subprocess.run(
            [uv if program == "uv" else program, *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        command = " ".join([program, *args])
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"


def other_answer(name: str) -> Callable[[Any], Any]:
    """How one answer changes on update: a protocol added, another broker, a deploy target."""
    values = choice_values(questions()[name])
    if questions()[name].get("multiselect"):
        return lambda chosen: [*chosen, next(value for value in values if value not in chosen)]
    return lambda chosen: next(value for value in values if value != chosen)


ANSWER_CHANGES = [
    pytest.param({"protocols": ["sse", "websocket"]}, "protocols", id="add-a-protocol"),
    *(
        pytest.param({}, name, id=f"change-{name}")
        for name in ("broker", "deploy")
        if name in questions() and len(choice_values(questions()[name])) > 1
    ),
]


@pytest.mark.parametrize(("start", "changed"), ANSWER_CHANGES)
def test_changing_an_answer_on_update_is_a_fresh_copy_plus_the_owners_edits(
    tmp_path: Path, start: dict[str, Any], changed: str
) -> None:
    clone = template_clone(tmp_path)
    project = owned_project(clone, tmp_path / "project", "HEAD", start)
    current = yaml.safe_load((project / ANSWERS_FILE).read_text(encoding="utf-8"))[changed]
    new = {**start, changed: other_answer(changed)(current)}

    update(project, "HEAD", new)

    assert_no_conflicts(project)
    expected = owned_project(clone, tmp_path / "expected", "HEAD", new)
    assert_same_files(project, expected)
