"""The server under test, and the hypothesis profiles.

FUZZ_PROJECT names a rendered project whose .venv is synced; its own
`<slug> serve` runs once for the whole run, and every example speaks to it.
`nox -s "fuzz(default)"` renders one, syncs it and sets this. A second one,
`secured`, is the same project with a secret and a publish key set, for the
properties of access (test_auth.py); it starts only when they run.

Profiles (`--hypothesis-profile NAME`): `ci`, the default, a fixed number of
examples per property and the same examples on every run; `long`, many more,
and new ones each run. FUZZ_EXAMPLES overrides the number of examples of either.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, Phase, settings

from tests.project import command_name

from .checks import DEADLINE
from .strategies import LISTED_ORIGIN, PUBLISH_KEY, SIGNING_KEY

STARTUP_SECONDS = 30.0

# The fuzz server's clients all come from 127.0.0.1, one example after another:
# the per-address limits would refuse them (429 is still an allowed answer).
UNLIMITED = {"REALTIME_PUBLISH_RATE": "0", "REALTIME_MAX_CLIENT_CONNECTIONS": "1000000"}
# The secured server: tokens signed with SIGNING_KEY, PUBLISH_KEY as a bearer value, and
# one listed origin whose pages may use the cookie.
SECURED = {
    "REALTIME_SECRET_KEY": SIGNING_KEY,
    "REALTIME_PUBLISH_KEY": PUBLISH_KEY,
    "REALTIME_ALLOWED_ORIGINS": LISTED_ORIGIN,
}

_COMMON = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")),
    derandomize=True,
    # No database to reuse, and no explaining phase: it costs more than the run.
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    **_COMMON,
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "2000")),
    derandomize=False,
    **_COMMON,
)
settings.load_profile("ci")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A time limit for each property that grows with its examples: each waits at most
    DEADLINE for anything, and takes a small fraction of that."""
    limit = max(300, 3 * settings.default.max_examples)
    for item in items:
        item.add_marker(pytest.mark.timeout(limit))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One `serve` process of the rendered project, on a free loopback port."""

    def __init__(self, project: Path, log: Path, env: Mapping[str, str] | None = None) -> None:
        self.project = project
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"
        self.log = log
        self._seen = 0
        script = project / ".venv" / "bin" / command_name(project)
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(script), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=project,
                env={**os.environ, "REALTIME_HEARTBEAT_SECONDS": "1", **UNLIMITED, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self._wait_until_healthy()

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    self._seen = len(self.log.read_bytes())
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"server did not become healthy:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def new_output(self) -> str:
        """What the server logged since the last call."""
        data = self.log.read_bytes()
        new, self._seen = data[self._seen :], len(data)
        return new.decode(errors="replace")

    def check(self, hidden: Iterable[str] = ()) -> None:
        """After every example: the process lives, /healthz answers 200, no traceback logged,
        and none of the `hidden` strings (tokens, keys) logged."""
        assert self.process.poll() is None, (
            f"the server exited with {self.process.returncode}:\n{self.output()[-5000:]}"
        )
        try:
            response = httpx.get(f"{self.url}/healthz", timeout=DEADLINE)
        except httpx.TransportError as error:
            raise AssertionError(f"/healthz did not answer: {error!r}") from None
        assert response.status_code == 200, (response.status_code, response.text[:500])
        logged = self.new_output()
        assert "Traceback" not in logged, f"the server logged a traceback:\n{logged[-5000:]}"
        for secret in hidden:
            assert secret not in logged, f"the server logged a token: {secret!r}\n{logged[-5000:]}"

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def answers(project: Path) -> dict[str, object]:
    with (project / ".copier-answers.yml").open(encoding="utf-8") as file:
        loaded: dict[str, object] = yaml.safe_load(file)
        return loaded


@pytest.fixture(scope="session")
def project() -> Path:
    value = os.environ.get("FUZZ_PROJECT")
    if not value:
        pytest.fail("FUZZ_PROJECT must name a rendered project with a synced .venv")
    return Path(value).resolve()


@pytest.fixture(scope="session")
def protocols(project: Path) -> list[str]:
    chosen = answers(project)["protocols"]
    assert isinstance(chosen, list), chosen
    return [str(protocol) for protocol in chosen]


def log_path(name: str) -> Path:
    """FUZZ_LOG, or a temporary file; `name` tells a second server's log from the first's."""
    given = os.environ.get("FUZZ_LOG")
    if not given:
        return Path(tempfile.mkstemp(prefix=f"fuzz-{name}-", suffix=".log")[1])
    path = Path(given)
    return path if name == "open" else path.with_name(f"{path.stem}-{name}{path.suffix}")


def finish(running: Server, hidden: Iterable[str] = ()) -> None:
    """At the end of the run: it must still be alive, have logged no traceback and none
    of `hidden`, and stop cleanly."""
    alive = running.process.poll() is None
    status = running.stop()
    output = running.output()
    print(f"\nserver log: {running.log} ({len(output.splitlines())} lines)")
    assert alive, f"the server died during the run:\n{output[-5000:]}"
    assert "Traceback" not in output, f"the server logged a traceback:\n{output[-5000:]}"
    for secret in hidden:
        assert secret not in output, f"the server logged a key: {secret!r}"
    assert status in (0, -signal.SIGTERM), f"the server stopped with {status}:\n{output[-5000:]}"


@pytest.fixture(scope="session")
def server(project: Path) -> Iterator[Server]:
    """One server for the whole run, open to anyone (no secret)."""
    running = Server(project, log_path("open"))
    yield running
    finish(running)


@pytest.fixture(scope="session")
def secured(project: Path) -> Iterator[Server]:
    """The same project with REALTIME_SECRET_KEY and REALTIME_PUBLISH_KEY set."""
    running = Server(project, log_path("auth"), SECURED)
    yield running
    finish(running, (SIGNING_KEY, PUBLISH_KEY))
