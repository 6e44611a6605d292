"""Connections the server ends: a cut slow consumer loses its connection, and clients
that misbehave on purpose (a cut body, a reset mid-write, never reading) cost the
log one line at most, never a traceback.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from .conftest import PROTOCOLS, Server
from .helpers import (
    DEADLINE,
    abort,
    http_client,
    publish,
    raw_connect,
    raw_get,
    unique_channel,
    wait_for_metric,
    wait_until,
    ws_frame,
    ws_handshake,
)

# What a client that never reads may have queued before the hub cuts it: few, big events.
BUFFER = "8"
EVENT_BYTES = 200_000
# How many times a misbehaving client repeats itself.
REPEATS = 50
# What those repeats may add to the server's log, in lines.
MAX_LOG_LINES = 3


def payload(number: int) -> str:
    return f"{number:06d}" + "x" * (EVENT_BYTES - 6)


def open_raw(server: Server, protocol: str, channel: str, *, rcvbuf: int = 4096) -> socket.socket:
    """A client of `protocol` on `channel` that reads nothing; the request is sent."""
    if protocol == "websocket":
        sock = ws_handshake(server, rcvbuf=rcvbuf)
        sock.sendall(ws_frame(json.dumps({"op": "subscribe", "channel": channel}).encode()))
        return sock
    headers = {"Accept": "text/event-stream"} if protocol == "sse" else {}
    return raw_get(server, f"/channels/{channel}/{protocol}", headers, rcvbuf=rcvbuf)


def server_holds(server: Server, port: int) -> bool:
    """Whether a process still has the server's end of this client's connection open.

    The kernel lists each end of a loopback connection; the end a process has
    let go of (closed, or orphaned with data still on its way) has no inode.
    """
    ends = {
        (f"0100007F:{server.port:04X}", f"0100007F:{port:04X}"),
    }
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if (fields[1], fields[2]) in ends and fields[9] != "0":
                return True
    return False


def read_until_closed(sock: socket.socket) -> str:
    """Read everything the server sends until it ends the connection: 'eof' or 'reset'.

    A stream's last chunk is not an end: the server must close the connection too.
    """
    deadline = time.monotonic() + DEADLINE
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            if not sock.recv(1 << 20):
                return "eof"
        except ConnectionResetError:
            return "reset"
        except TimeoutError:
            raise AssertionError(
                f"the server kept the connection open {DEADLINE} s after cutting the client"
            ) from None


def publish_until_cut(server: Server, channel: str, cuts: int) -> None:
    """Publish big events until the hub has cut `cuts` more slow consumers."""
    before = server.metric("realtime_slow_consumer_disconnects_total")
    with http_client(server) as client:
        for number in range(300):
            publish(client, channel, payload(number))
            if number % 4 == 3:
                cut = server.metric("realtime_slow_consumer_disconnects_total") - before
                if cut >= cuts:
                    return
    raise AssertionError(f"300 events of {EVENT_BYTES} bytes did not cut {cuts} clients")


@contextmanager
def log_lines_added(server: Server, most: int = MAX_LOG_LINES) -> Iterator[None]:
    """Fail if the block makes the server log a traceback, or more than `most` lines."""
    before = len(server.output().splitlines())
    yield
    # A line about something that just happened may still be on its way.
    time.sleep(0.5)
    added = server.output().splitlines()[before:]
    text = "\n".join(added)
    assert "Traceback" not in text, text
    assert len(added) <= most, text


@pytest.fixture(scope="module")
def bounded() -> Iterator[Server]:
    """A server whose clients fall behind after a few big events, shared by this module's
    cut tests: each ends with every connection it made gone."""
    # A cut WebSocket is sent close 1013 first, and waited for one heartbeat interval.
    running = Server(
        {
            "REALTIME_SUBSCRIBER_BUFFER": BUFFER,
            "REALTIME_MAX_MESSAGE_BYTES": "1000000",
            "REALTIME_HEARTBEAT_SECONDS": "1",
        }
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def large() -> Iterator[Server]:
    """A server that takes big events, shared by this module's reset tests."""
    running = Server({"REALTIME_MAX_MESSAGE_BYTES": "1000000"})
    yield running
    running.stop()


# --- a cut slow consumer loses its connection --------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_cut_slow_consumer_loses_its_connection_at_once(bounded: Server, protocol: str) -> None:
    """The hub cuts a client that never reads; the server closes its connection, without
    waiting for that client to read what was queued for it or to close first (a
    WebSocket is given one heartbeat interval to answer its close 1013)."""
    server = bounded
    channel = unique_channel()
    slow = open_raw(server, protocol, channel)
    try:
        wait_for_metric(server, "realtime_subscribers", "", 1)
        with log_lines_added(server):
            publish_until_cut(server, channel, 1)
            # Its task (or thread) and its subscriber are gone...
            wait_for_metric(server, "realtime_connections", f'protocol="{protocol}"', 0)
            wait_for_metric(server, "realtime_subscribers", "", 0)
            # ...and so is its socket, although the client has read nothing yet.
            port = slow.getsockname()[1]
            wait_until(
                lambda: not server_holds(server, port),
                "the server to let go of the connection of a client it cut",
            )
        assert read_until_closed(slow) in ("eof", "reset")
    finally:
        slow.close()
    with http_client(server) as client:
        assert client.get("/healthz").status_code == 200


def test_many_cut_slow_consumers_log_one_line(bounded: Server) -> None:
    """Clients that make themselves slow, on every protocol at once: one line, all freed."""
    server = bounded
    channel = unique_channel()
    clients = [open_raw(server, PROTOCOLS[n % len(PROTOCOLS)], channel) for n in range(REPEATS)]
    try:
        wait_for_metric(server, "realtime_subscribers", "", REPEATS)
        with log_lines_added(server):
            publish_until_cut(server, channel, REPEATS)
            for protocol in PROTOCOLS:
                wait_for_metric(server, "realtime_connections", f'protocol="{protocol}"', 0)
            ports = [sock.getsockname()[1] for sock in clients]
            wait_until(
                lambda: not any(server_holds(server, port) for port in ports),
                "the server to let go of the connections of the clients it cut",
            )
    finally:
        for sock in clients:
            sock.close()
    with http_client(server) as client:
        assert client.get("/healthz").status_code == 200


# --- clients that vanish ---------------------------------------------------------------------


def test_publish_bodies_cut_short_log_no_traceback(server: Server) -> None:
    """A client that announces a body and leaves after a few bytes of it, again and again."""
    head = (
        f"POST /channels/{unique_channel()}/events HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    with log_lines_added(server):
        clients = []
        for _ in range(REPEATS):
            sock = raw_connect(server)
            sock.sendall(head + b'{"a": "xxx')
            clients.append(sock)
        # Long enough for the server to be reading each body.
        time.sleep(0.2)
        ports = [sock.getsockname()[1] for sock in clients]
        for sock in clients:
            sock.close()
        wait_until(
            lambda: not any(server_holds(server, port) for port in ports),
            "the server to close the connections of the bodies cut short",
        )
    with http_client(server) as client:
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_stream_clients_that_reset_mid_write_log_no_traceback(large: Server, protocol: str) -> None:
    """Clients that stop reading, so that the server is in the middle of a write, then reset."""
    server = large
    channel = unique_channel()
    clients = [open_raw(server, protocol, channel) for _ in range(REPEATS)]
    try:
        wait_for_metric(server, "realtime_subscribers", "", REPEATS)
        with log_lines_added(server):
            with http_client(server) as client:
                for number in range(3):
                    publish(client, channel, payload(number))
            # Every writer has its first chunk on the way and more behind it.
            time.sleep(0.5)
            for sock in clients:
                abort(sock)
            wait_for_metric(server, "realtime_connections", f'protocol="{protocol}"', 0)
            wait_for_metric(server, "realtime_subscribers", "", 0)
    finally:
        for sock in clients:
            sock.close()
    with http_client(server) as client:
        assert client.get("/healthz").status_code == 200
