"""Sessions for the template repository. `nox` alone runs what CI runs.

Every session gets its tools from a dependency group of pyproject.toml, at the
versions in uv.lock. A rendered project is checked in its own environment
(its own .venv, made by uv), never in the session's.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from tests.project import CHECKS, STACKS, command_name, lowest_python, project_env  # noqa: E402

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv"

# Named sets of answers; anything not given takes its default from copier.yml.
VARIANTS: dict[str, dict[str, object]] = {
    "default": {},
    # One protocol alone, on another Python: the tests of the endpoints left out run too.
    "django-sse-py313": {"framework": "django", "protocols": ["sse"], "python_version": "3.13"},
    "quart-websocket-hypercorn-py312": {
        "framework": "quart",
        "protocols": ["websocket"],
        "server": "hypercorn",
        "python_version": "3.12",
    },
    # Each broker, on a server other than the default (NATS on aiohttp's, below); their
    # tests need the broker's server (see .ci/run). docs/brokers.md, docs/servers.md.
    "litestar-redis-granian": {"framework": "litestar", "broker": "redis", "server": "granian"},
    "fastapi-postgres-gunicorn": {
        "framework": "fastapi",
        "broker": "postgres",
        "server": "gunicorn-uvicorn",
    },
    # Every deploy target, with a broker that lets them run several processes; its
    # tests run the app behind nginx and run the Dockerfile's and Procfile's commands.
    "django-daphne-deploy-all": {
        "framework": "django",
        "server": "daphne",
        "broker": "redis",
        "deploy": ["docker", "kubernetes", "nginx", "systemd", "fly", "procfile"],
    },
    # The other frameworks with every protocol, on their default server. Every
    # framework on every server it is offered: `nox -t stacks` (docs/testing.md).
    "aiohttp-nats": {"framework": "aiohttp", "broker": "nats"},
    "flask": {"framework": "flask"},
}

# The covering array: every pair of answers in at least one variant (tests/variants.py).
COVERING: dict[str, dict[str, object]] = json.loads(
    (ROOT / "tests" / "variants.json").read_text(encoding="utf-8")
)

# The projects that the `fuzz` sessions render, start and fuzz (fuzz/, docs/testing.md).
FUZZ: dict[str, dict[str, object]] = {
    "default": {},
    "flask": {"framework": "flask"},
    "django": {"framework": "django"},
}

# The variant that `nox` alone does not run: the `tests` session already runs the
# default project's full checks (tests/test_full.py). `nox -s "variant(default)"` runs it.
NOT_BY_DEFAULT = {"default"}

# What CI runs.
nox.options.sessions = [
    "lint",
    "tests",
    *(f"variant({name})" for name in VARIANTS if name not in NOT_BY_DEFAULT),
    *(f"fuzz({name})" for name in FUZZ),
]


def sync(session: nox.Session, group: str) -> None:
    """Install one dependency group, as locked, into the session's environment."""
    session.run_install("uv", "sync", "--locked", "--only-group", group)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff on the repository's own Python; template/ is linted once rendered."""
    sync(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def tests(session: nox.Session) -> None:
    """The template's tests; `-- -k "not full"` leaves out the slow full project check."""
    sync(session, "test")
    session.run("pytest", *session.posargs)


@nox.session
@nox.parametrize("name", [nox.param(name, id=name) for name in VARIANTS])
def variant(session: nox.Session, name: str) -> None:
    """Render one named variant and run the generated project's own checks in its own .venv."""
    check_variant(session, name, VARIANTS[name])


@nox.session(tags=["covering"])
@nox.parametrize("name", [nox.param(name, id=name) for name in COVERING])
def covering(session: nox.Session, name: str) -> None:
    """One variant of the covering array (tests/variants.json), checked in full.

    Together they run every pair of answers; CI runs each in its own job. Too
    many to run one after another by default: `nox -t covering` runs them all.
    """
    check_variant(session, name, COVERING[name])


@nox.session(tags=["stacks"])
@nox.parametrize(
    "stack",
    [
        nox.param(f"{framework}-{server}", id=f"{framework}-{server}")
        for framework, servers in STACKS.items()
        for server in servers
    ],
)
def stack(session: nox.Session, stack: str) -> None:
    """One framework on one of its servers, every protocol, in-memory broker, checked in full.

    Not run by default (the named variants and the covering array already meet
    every framework with every server): `nox -t stacks` runs them all.
    """
    framework, server = stack.split("-", 1)
    check_variant(session, stack, {"framework": framework, "server": server})


def check_variant(session: nox.Session, name: str, answers: dict[str, object]) -> None:
    sync(session, "render")
    with tempfile.TemporaryDirectory(prefix=f"copier-realtime-{name}-") as tmp:
        project = Path(tmp) / "project"
        session.run("python", "-m", "tests.project", str(project), json.dumps(answers))
        env = project_env(lowest_python(project))
        with session.chdir(project):
            for command in CHECKS:
                session.run(*command, env=env, external=True)


@nox.session(tags=["fuzz"])
@nox.parametrize("name", [nox.param(name, id=name) for name in FUZZ])
def fuzz(session: nox.Session, name: str) -> None:
    """Property-based fuzzing (hypothesis) of one rendered project's running server.

    Renders the project, syncs its .venv and starts its own `serve`; the tests in
    fuzz/ run here and speak HTTP and WebSocket to it. A fixed number of examples
    per property, the same on every run; `-- --hypothesis-profile=long` for many
    more, new each run, and FUZZ_EXAMPLES=N for N per property. The server's log
    is kept in the session's tmp folder.
    """
    sync(session, "fuzz")
    log = Path(session.create_tmp()) / f"server-{name}.log"
    with tempfile.TemporaryDirectory(prefix=f"copier-realtime-fuzz-{name}-") as tmp:
        project = Path(tmp) / "project"
        session.run("python", "-m", "tests.project", str(project), json.dumps(FUZZ[name]))
        with session.chdir(project):
            session.run(
                "uv", "sync", "--no-dev", env=project_env(lowest_python(project)), external=True
            )
        session.run(
            "pytest",
            str(ROOT / "fuzz"),
            "-p",
            "no:cacheprovider",
            "--hypothesis-show-statistics",
            *session.posargs,
            env={"FUZZ_PROJECT": str(project), "FUZZ_LOG": str(log)},
        )


@nox.session
def demo(session: nox.Session) -> None:
    """Render the default project into .demo/ (or the folder after --) and serve it.

    The app listens on http://127.0.0.1:8000 until Ctrl-C. Rendering again
    over an earlier demo overwrites the template's files and keeps its .venv.
    """
    sync(session, "render")
    project = Path(session.posargs[0]).resolve() if session.posargs else ROOT / ".demo"
    session.run("python", "-m", "tests.project", str(project), "{}", "--overwrite")
    env = project_env(lowest_python(project))
    with session.chdir(project):
        session.run(
            "uv",
            "run",
            command_name(project),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "8000",
            env=env,
            external=True,
        )


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Server CPU and memory of the generated app beside its peers, as ratios (docs/benchmarks.md).

    Not run by default. Python 3.11 is the default project's, so every server
    runs on the same interpreter. `-- --subscribers 500 --events 50` for a quick run.
    """
    sync(session, "bench")
    session.run("python", "-m", "bench", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with mkdocs; any warning fails the build."""
    sync(session, "docs")
    session.run("mkdocs", "build", "--strict", *session.posargs)
