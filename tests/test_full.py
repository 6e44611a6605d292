"""One generated project passes its own checks: uv sync, ruff, mypy --strict, pytest.

Slow: it installs the project's dependencies and runs its black-box tests,
the browser test included (Chromium at /usr/bin/chromium or $CHROMIUM_PATH).
The default answers are checked here; the noxfile's `variant` sessions check
other answers the same way.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import Render
from tests.project import CHECKS, apply_env, lowest_python, project_env


@pytest.mark.full
@pytest.mark.timeout(1800)
def test_full_checks_pass_for_the_default_answers(render_project: Render, uv: str) -> None:
    project = render_project()
    env = apply_env(project_env(lowest_python(project)))
    for command in CHECKS:
        program, *args = command
        result = subprocess.run(
            [uv if program == "uv" else program, *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, (
            f"`{' '.join(command)}` failed with {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
