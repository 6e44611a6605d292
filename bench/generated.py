"""The generated app: the template's default project, rendered and installed in its own .venv.

It runs the way its users run it, `<slug> serve`, on the project's own
dependencies, resolved by uv when the benchmark starts.
"""

from __future__ import annotations

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


def build(folder: Path) -> tuple[list[str], dict[str, str]]:
    """Render and install the default project in `folder`; its serve command and environment."""
    project = render(folder / "project", {})
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
    """The server-side packages the generated project resolved to."""
    project = folder / "project"
    python = project / ".venv" / "bin" / "python"
    code = (
        "import importlib.metadata as m, platform; print(platform.python_version(), "
        "*(f'{n} {m.version(n)}' for n in ('starlette', 'uvicorn', 'uvloop', 'httptools')), "
        "sep=', ')"
    )
    result = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True, cwd=project
    )
    return result.stdout.strip()
