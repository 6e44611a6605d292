"""Limits the server enforces on connections: request heads, idle and slow clients.

Clients that misbehave on purpose, over raw sockets: a header too large, too
many headers, a connection that sends nothing, a head or a body sent a byte
at a time, and thousands of such connections at once. None of them may take
the server down or keep it from answering others.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import COMMAND, Server, StartServer, free_port
from .helpers import DEADLINE, TIMEOUT, process_tree, raw_connect, read_head, wait_until

# More than the ~1,100 idle or slowloris sockets that once made a threaded server
# unavailable; well below the open-file limit of a test run.
MANY_SOCKETS = 2000
MIB = 1024 * 1024
# Short deadlines, so that a test waits for them to pass.
SHORT = {"keep_alive_seconds": "2", "header_timeout_seconds": "1", "body_timeout_seconds": "1"}
ANSWERS = Path(__file__).resolve().parent.parent / ".copier-answers.yml"


def server_name() -> str:
    """The server this project runs on, as its answers file says."""
    for line in ANSWERS.read_text().splitlines():
        if line.startswith("server:"):
            return line.partition(":")[2].strip()
    return ""


# Deadlines a server has no option for, and that this project does not add to it yet
# (docs/limits): expected to fail there, and to say so once they no longer do.
NOT_ENFORCED = {
    "a new connection's time to send its first request": {"granian"},
}


def unless_enforced(limit: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(
        server_name() in NOT_ENFORCED[limit],
        reason=f"{server_name()} has no limit on {limit}",
        strict=True,
    )


def healthy(server: Server) -> None:
    response = httpx.get(f"{server.url}/healthz", timeout=TIMEOUT)
    assert response.status_code == 200, response.text


def refused(sock: socket.socket, request: bytes) -> None:
    """Send `request`; the server must answer 4xx or close the connection, not serve it."""
    with contextlib.suppress(ConnectionError):
        # The server may stop reading and close before the whole request is sent.
        sock.sendall(request)
    data = b""
    with contextlib.suppress(ConnectionError):
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n" in data:
                break
    if data:
        status = int(data.split(b" ", 2)[1])
        assert 400 <= status < 500, data[:200]


def closed_by_server(sock: socket.socket, trickle: bytes = b"") -> None:
    """Wait for the server to close the connection, sending `trickle` a byte at a time."""
    deadline = time.monotonic() + DEADLINE
    sock.settimeout(0.25)
    sent = 0
    answer = b""
    while time.monotonic() < deadline:
        try:
            if sent < len(trickle):
                sock.sendall(trickle[sent : sent + 1])
                sent += 1
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionError:
            return
        if not data:
            return
        # A server may answer 408 before it closes; it must not serve the request.
        answer += data
        assert answer.startswith(b"HTTP/1.1 4"[: len(answer)]), answer[:200]
    raise AssertionError(f"the server kept the connection open for {DEADLINE} s")


def head(server: Server, path: str = "/healthz") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode()


@pytest.fixture
def limited(start_server: StartServer) -> Server:
    return start_server(**SHORT)


@pytest.mark.parametrize("complete", [True, False], ids=["terminated", "unterminated"])
def test_a_1_mib_header_is_refused(server: Server, complete: bool) -> None:
    request = head(server) + b"X-Big: " + b"a" * MIB + (b"\r\n\r\n" if complete else b"")
    with raw_connect(server) as sock:
        refused(sock, request)
    healthy(server)


def test_a_head_with_more_fields_than_the_limit_is_refused(server: Server) -> None:
    fields = b"".join(b"X-Field-%d: x\r\n" % number for number in range(1000))
    with raw_connect(server) as sock:
        refused(sock, head(server) + fields + b"\r\n")
    healthy(server)


def test_a_head_within_the_limits_is_served(server: Server) -> None:
    headers = {f"X-Field-{number}": "v" * 100 for number in range(50)}
    response = httpx.get(f"{server.url}/healthz", headers=headers, timeout=TIMEOUT)
    assert response.status_code == 200, response.text


@unless_enforced("a new connection's time to send its first request")
def test_a_connection_that_sends_nothing_is_closed(limited: Server) -> None:
    with raw_connect(limited) as sock:
        closed_by_server(sock)
    healthy(limited)


def test_a_head_sent_a_byte_at_a_time_is_closed(limited: Server) -> None:
    trickle = b"X-Slow: " + b"s" * 200
    with raw_connect(limited) as sock:
        sock.sendall(head(limited))
        closed_by_server(sock, trickle)
    healthy(limited)


def test_a_body_sent_a_byte_at_a_time_is_closed(limited: Server) -> None:
    request = (
        f"POST /channels/slow/events HTTP/1.1\r\nHost: 127.0.0.1:{limited.port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    with raw_connect(limited) as sock:
        sock.sendall(request)
        closed_by_server(sock, b'"' + b"s" * 200)
    healthy(limited)


def test_an_idle_connection_after_a_response_is_closed(limited: Server) -> None:
    with raw_connect(limited) as sock:
        sock.sendall(head(limited) + b"\r\n")
        status, headers, body = read_head(sock)
        assert status == 200, (status, headers)
        while len(body) < int(headers["content-length"]):
            body += sock.recv(65536)
        closed_by_server(sock)


@contextlib.contextmanager
def many_sockets(server: Server, first_bytes: bytes) -> Iterator[list[socket.socket]]:
    """MANY_SOCKETS connections, each having sent `first_bytes` (nothing: idle)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(MANY_SOCKETS):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
            socks.append(sock)
            if first_bytes:
                sock.sendall(first_bytes)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_idle_sockets_leave_the_server_answering(server: Server) -> None:
    with many_sockets(server, b""):
        time.sleep(1)
        healthy(server)
    healthy(server)


def test_slowloris_sockets_leave_the_server_answering(server: Server) -> None:
    with many_sockets(server, head(server) + b"X-Slow: ") as socks:
        time.sleep(1)
        for sock in socks:
            # Still sending, a byte at a time.
            sock.sendall(b"s")
        healthy(server)
    healthy(server)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REALTIME_MAX_HEADER_BYTES", "100"),
        ("REALTIME_MAX_HEADER_BYTES", "16k"),
        ("REALTIME_MAX_HEADERS", "0"),
        ("REALTIME_KEEP_ALIVE_SECONDS", "0"),
        ("REALTIME_HEADER_TIMEOUT_SECONDS", "soon"),
        ("REALTIME_BODY_TIMEOUT_SECONDS", "-1"),
    ],
)
def test_a_bad_limit_stops_start_up_with_one_line_naming_it(name: str, value: str) -> None:
    script = Path(sys.executable).with_name(COMMAND)
    environment = {
        key: setting for key, setting in os.environ.items() if not key.startswith("REALTIME_")
    }
    result = subprocess.run(
        [str(script), "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        env={**environment, name: value},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, f"{name}={value!r}: exit {result.returncode}\n{result.stderr}"
    assert len(lines) == 1, f"{name}={value!r}: stderr is not one line:\n{result.stderr}"
    assert name in lines[0], f"{name}={value!r}: the line does not name the variable: {lines}"


@pytest.mark.skipif(
    server_name() not in ("uvicorn", "gunicorn-uvicorn"),
    reason="uvloop drops clients silently at the open-file limit; other servers log it",
)
def test_at_the_open_file_limit_new_clients_are_closed_and_logged(
    start_server: StartServer,
) -> None:
    server = start_server()
    for pid in process_tree(server.process.pid):
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (300, 300))
    socks: list[socket.socket] = []
    try:
        for _ in range(260):
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE))
        wait_until(
            lambda: "near the open-file limit" in server.output(),
            "a log line about connections closed at the open-file limit",
        )
    finally:
        for sock in socks:
            sock.close()
    wait_until(lambda: httpx_ok(server), "the server to answer again")
    assert server.output().count("near the open-file limit") == 1, server.output()[-2000:]


def httpx_ok(server: Server) -> bool:
    try:
        return httpx.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200
    except httpx.TransportError:
        return False
