"""The generated app: the template's default project, or the same with another framework,
rendered and installed in its own .venv.

It runs the way its users run it, `<slug> serve` on the framework's default
server, on the project's own dependencies, resolved by uv when the benchmark starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.project import apply_env, command_name, lowest_python, project_env, render

# Settings for the benchmark: a buffer no lock-step run can fill, the default heartbeat,
# and a short drain so that stopping it does not wait long.
SETTINGS = {
    "REALTIME_SUBSCRIBER_BUFFER": "100000",
    "REALTIME_HEARTBEAT_SECONDS": "15",
    "REALTIME_DRAIN_SECONDS": "2",
}


# The packages whose versions the table shows, where the project has them.
PACKAGES = (
    "starlette",
    "fastapi",
    "litestar",
    "quart",
    "django",
    "channels",
    "aiohttp",
    "flask",
    "flask-sock",
    "uvicorn",
    "gunicorn",
    "uvloop",
    "httptools",
)


def build(folder: Path, framework: str | None = None) -> tuple[list[str], dict[str, str]]:
    """Render and install a project in `folder`: the default one, or the default with
    `framework`. Its serve command and environment."""
    project = render(folder / "project", {} if framework is None else {"framework": framework})
    env = apply_env(project_env(lowest_python(project)))
    subprocess.run(
        ["uv", "sync", "--no-dev", "--quiet"],
        cwd=project,
        env=env,
        check=True,
        stdout=sys.stderr,
    )
    script = project / ".venv" / "bin" / command_name(project)
    return [str(script), "serve", "--host", "127.0.0.1"], {**env, **SETTINGS}


def versions(folder: Path) -> str:
    """Python and the server-side packages the generated project resolved to."""
    project = folder / "project"
    python = project / ".venv" / "bin" / "python"
    code = (
        "import importlib.metadata as m, json, platform; print(json.dumps("
        "[platform.python_version(), {d.name.lower(): d.version for d in m.distributions()}]))"
    )
    result = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True, cwd=project
    )
    python_version, installed = json.loads(result.stdout)
    found = [f"{name} {installed[name]}" for name in PACKAGES if name in installed]
    return ", ".join([python_version, *found])
