"""A bad REALTIME_* value stops `serve` at start-up: exit status 2, one line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import (
    BAD_BROKER_URLS,
    BROKER_URL,
    COMMAND,
    RUN_NAMESPACE,
    StartServer,
    free_port,
)
from .helpers import http_client

BAD_SETTINGS = [
    ("REALTIME_HEARTBEAT_SECONDS", "abc"),
    ("REALTIME_HEARTBEAT_SECONDS", "0"),
    ("REALTIME_HEARTBEAT_SECONDS", "-1"),
    ("REALTIME_HEARTBEAT_SECONDS", "nan"),
    ("REALTIME_RETRY_MS", "-1"),
    ("REALTIME_RETRY_MS", "soon"),
    ("REALTIME_HISTORY_SIZE", "x"),
    ("REALTIME_HISTORY_SIZE", "0"),
    ("REALTIME_HISTORY_SIZE", "-5"),
    ("REALTIME_HISTORY_SIZE", "2.5"),
    ("REALTIME_MAX_MESSAGE_BYTES", "0"),
    ("REALTIME_MAX_MESSAGE_BYTES", "64k"),
    ("REALTIME_SUBSCRIBER_BUFFER", "0"),
    ("REALTIME_SUBSCRIBER_BUFFER", "many"),
    ("REALTIME_DRAIN_SECONDS", "-1"),
    ("REALTIME_DRAIN_SECONDS", "ten"),
    ("REALTIME_BROKER_URL", "ftp://x"),
    ("REALTIME_BROKER_URL", "nonsense"),
    *[("REALTIME_BROKER_URL", url) for url in BAD_BROKER_URLS],
    ("REALTIME_NAMESPACE", "Upper"),
    ("REALTIME_NAMESPACE", "with-dash"),
    ("REALTIME_NAMESPACE", "n" * 41),
    ("REALTIME_ALLOWED_ORIGINS", "not-an-origin"),
    ("REALTIME_ALLOWED_ORIGINS", "app.example.com"),
    ("REALTIME_ALLOWED_ORIGINS", "https://ok.example.com,ftp://files.example.com"),
    ("REALTIME_ALLOWED_ORIGINS", "https://app.example.com/path"),
]


def clean_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("REALTIME_")}


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS)
def test_bad_setting_stops_start_up_with_one_line(name: str, value: str) -> None:
    script = Path(sys.executable).with_name(COMMAND)
    command = [str(script), "serve", "--host", "127.0.0.1", "--port", str(free_port())]
    try:
        result = subprocess.run(
            command,
            env={**clean_environment(), name: value},
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}={value!r}: the server started instead of refusing the value")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, f"{name}={value!r}: exit {result.returncode}\n{result.stderr}"
    assert len(lines) == 1, f"{name}={value!r}: stderr is not one line:\n{result.stderr}"
    assert name in lines[-1], f"{name}={value!r}: the line does not name the variable: {lines}"
    assert "Traceback" not in result.stderr


def test_good_settings_start(start_server: StartServer) -> None:
    server = start_server(
        heartbeat_seconds="0.5",
        retry_ms="1500",
        history_size="10",
        max_message_bytes="1024",
        subscriber_buffer="4",
        drain_seconds="0",
        broker_url=BROKER_URL,
        namespace=f"{RUN_NAMESPACE}_good",
        allowed_origins="https://app.example.com, http://127.0.0.1:8000",
    )
    with http_client(server) as client:
        assert client.get("/readyz").json() == {"status": "ready"}


def refuse_to_serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `serve` with extra arguments, expecting it to stop at start-up."""
    script = Path(sys.executable).with_name(COMMAND)
    command = [str(script), "serve", "--host", "127.0.0.1", "--port", str(free_port()), *args]
    try:
        return subprocess.run(
            command,
            env={**clean_environment(), **env},
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve {' '.join(args)}: the server started instead of refusing")


def test_several_workers_need_a_broker_that_processes_share() -> None:
    # Each worker process has its own hub: with the in-memory broker, an event
    # published to one would never reach the subscribers of another.
    result = refuse_to_serve("--workers", "2", env={"REALTIME_BROKER_URL": "memory://"})
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stderr}"
    assert len(lines) == 1, f"stderr is not one line:\n{result.stderr}"
    assert "REALTIME_BROKER_URL" in lines[0], lines
    assert "memory://" in lines[0], lines
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", ["0", "-1", "two", ""])
def test_bad_worker_count_is_refused(workers: str) -> None:
    result = refuse_to_serve("--workers", workers, env={})
    assert result.returncode == 2, f"--workers {workers!r}: exit {result.returncode}"
    assert "--workers" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("port", ["http", "-1", "65536"])
def test_bad_port_from_the_environment_is_refused(port: str) -> None:
    # Platforms that route to the app name its port in $PORT, which `serve` binds by default.
    script = Path(sys.executable).with_name(COMMAND)
    try:
        result = subprocess.run(
            [str(script), "serve", "--host", "127.0.0.1"],
            env={**clean_environment(), "PORT": port},
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"PORT={port!r}: the server started instead of refusing the value")
    assert result.returncode == 2, f"PORT={port!r}: exit {result.returncode}\n{result.stderr}"
    assert "$PORT" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
