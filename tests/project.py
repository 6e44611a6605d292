"""Render the template and check a rendered project; shared by the tests and the noxfile.

Only the standard library is imported at module level, so the noxfile can
import this too; copier is imported where a render happens, in an environment
that has it. Run as `python -m tests.project DST [ANSWERS_JSON] [--overwrite]`.
"""

from __future__ import annotations

import argparse
import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# A generated project's own checks, in its own environment, in this order.
CHECKS: tuple[tuple[str, ...], ...] = (
    ("uv", "sync", "--all-groups"),
    ("uv", "run", "ruff", "check"),
    ("uv", "run", "ruff", "format", "--check"),
    ("uv", "run", "mypy"),
    ("uv", "run", "pytest"),
)


# Each framework and the servers copier.yml offers for it, the default first
# (tests/test_servers.py keeps this equal to copier.yml); a nox session each.
STACKS: dict[str, tuple[str, ...]] = {
    "starlette": ("uvicorn", "granian", "hypercorn", "gunicorn-uvicorn"),
    "fastapi": ("uvicorn", "granian", "hypercorn", "gunicorn-uvicorn"),
    "litestar": ("uvicorn", "granian", "hypercorn", "gunicorn-uvicorn"),
    "quart": ("uvicorn", "granian", "hypercorn", "gunicorn-uvicorn"),
    "django": ("uvicorn", "granian", "hypercorn", "gunicorn-uvicorn", "daphne"),
    "aiohttp": ("aiohttp",),
    "flask": ("gunicorn-gthread",),
}


def render(
    dst: Path,
    answers: Mapping[str, object],
    *,
    overwrite: bool = False,
    template: Path | None = None,
) -> Path:
    """Render this repository's HEAD plus its uncommitted changes into `dst`,
    or the template in `template`, a plain copy of it."""
    import copier  # noqa: PLC0415 - only the environments that render have copier

    copier.run_copy(
        src_path=str(template or ROOT),
        dst_path=str(dst),
        data=dict(answers),
        defaults=True,
        overwrite=overwrite,
        unsafe=False,
        vcs_ref=None if template else "HEAD",
        quiet=True,
    )
    return dst


def lowest_python(project: Path) -> str:
    """The lowest Python a rendered project supports, from its `requires-python = ">=X.Y"`."""
    requires: str = read_pyproject(project)["project"]["requires-python"]
    if not requires.startswith(">="):
        raise ValueError(f"expected requires-python '>=X.Y', got {requires!r}")
    return requires.removeprefix(">=")


def command_name(project: Path) -> str:
    """The console script a rendered project installs: `<slug>`."""
    (name,) = read_pyproject(project)["project"]["scripts"]
    return str(name)


def read_pyproject(project: Path) -> dict[str, Any]:
    with (project / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def project_env(python: str) -> dict[str, str | None]:
    """Environment changes for uv inside a rendered project (None removes a variable).

    The project gets its own .venv (not the caller's VIRTUAL_ENV or nox's
    UV_PROJECT_ENVIRONMENT), on the lowest Python it supports, and uv never
    downloads an interpreter.
    """
    return {
        "UV_PYTHON": python,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PROJECT_ENVIRONMENT": None,
        "VIRTUAL_ENV": None,
    }


def apply_env(changes: Mapping[str, str | None]) -> dict[str, str]:
    """os.environ with `changes` applied, for subprocess.run."""
    env = dict(os.environ)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render the template into DST.")
    parser.add_argument("dst", type=Path)
    parser.add_argument("answers", nargs="?", default="{}", help="answers as a JSON object")
    parser.add_argument("--overwrite", action="store_true", help="overwrite existing files")
    args = parser.parse_args(argv)
    render(args.dst, json.loads(args.answers), overwrite=args.overwrite)


if __name__ == "__main__":
    main()
