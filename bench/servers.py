"""Server processes: start one on a free loopback port, read its CPU and RSS from /proc, stop it.

Every child asks the kernel to kill it when the benchmark dies (PR_SET_PDEATHSIG),
so not even a killed run leaves a server behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
STARTUP_SECONDS = 60.0
STOP_SECONDS = 15.0
PR_SET_PDEATHSIG = 1
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the benchmark process ends."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log: IO[bytes] | None = None,
    pipes: bool = False,
) -> subprocess.Popen[bytes]:
    """Start a child that dies with this process; its output goes to `log`, or to pipes."""
    return subprocess.Popen(
        list(command),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.PIPE if pipes else None,
        stdout=subprocess.PIPE if pipes else log,
        stderr=subprocess.STDOUT if log is not None else None,
        preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, before exec
    )


class Server:
    """One server process on a free port, logging to `log`."""

    def __init__(
        self, name: str, command: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path
    ) -> None:
        self.name = name
        self.port = free_port()
        self.command = [*command, "--port", str(self.port)]
        self.env = env
        self.cwd = cwd
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = spawn(self.command, env=self.env, cwd=self.cwd, log=log)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up:\n{self.output()}")
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
            except OSError:
                time.sleep(0.1)
            else:
                return
        raise RuntimeError(f"{self.name} did not listen within {STARTUP_SECONDS} s")

    def processes(self) -> list[int]:
        """The server's process and its descendants: gunicorn, for one, serves from a worker."""
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process has just ended
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        found = [self.pid]
        for pid in found:
            found.extend(children.get(pid, []))
        return found

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server's processes, from /proc/<pid>/stat."""
        ticks = 0
        for pid in self.processes():
            with suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                # utime and stime are fields 14 and 15; the split starts at field 3.
                ticks += int(fields[11]) + int(fields[12])
        return ticks / TICKS_PER_SECOND

    def rss_kib(self) -> int:
        """Resident memory of the server's processes, from /proc/<pid>/status."""
        total = 0
        for pid in self.processes():
            with suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        if total == 0:
            raise RuntimeError(f"no VmRSS for {self.name}")
        return total

    def output(self, last: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-last:] if self.log.exists() else ""

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_SECONDS)


def uvicorn_command(app: str) -> list[str]:
    """A peer under uvicorn, one process, flags as the generated app's server uses them."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        HOST,
        "--no-access-log",
        "--ws",
        "none",
        "--log-level",
        "warning",
        "--timeout-graceful-shutdown",
        "2",
    ]
