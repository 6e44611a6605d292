"""Clients for the black-box tests: each speaks one protocol, with a deadline on every wait.

DEADLINE is only an upper bound for waiting on something that must happen; no
test asserts how long anything takes.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import signal
import socket
import struct
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from .conftest import Server

DEADLINE = 10.0
TIMEOUT = httpx.Timeout(DEADLINE)

# After a graceful shutdown uvicorn raises the signal again, so that the exit
# status says what stopped the process; anything else (1, SIGKILL) is a failure.
CLEAN_SHUTDOWN = (0, -signal.SIGTERM)


# --- names, publishing, errors ---------------------------------------------------------------


# Names that break ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$; URL-quote them in paths.
BAD_CHANNELS = ["", "-x", ".x", "_x", ":x", "a b", "x" * 129, "ü", "a\tb", "a,b", "a*", "a%b"]


def unique_channel(prefix: str = "t") -> str:
    """A channel no other test uses, so tests sharing a server cannot see each other's events."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def id_key(event_id: str) -> tuple[int, ...]:
    """The order of ids. Ids are opaque, but every broker makes decimal integers, or
    (Redis stream ids) two of them joined by a dash, compared part by part."""
    parts = event_id.split("-")
    assert len(parts) <= 2, f"expected N or N-N, got {event_id!r}"
    for part in parts:
        assert part.isascii(), event_id
        assert part.isdigit(), f"expected N or N-N, got {event_id!r}"
    return tuple(int(part) for part in parts)


def media_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.partition(";")[0].strip().lower()


def cache_directives(response: httpx.Response) -> list[str]:
    value: str = response.headers.get("cache-control", "")
    return [part.strip().lower() for part in value.split(",")]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    """An HTTP error of the contract: this status, and a JSON body {"error": code, "message"}."""
    assert response.status_code == status, (
        f"expected {status} {code}, got {response.status_code}: {response.text[:500]}"
    )
    assert media_type(response) == "application/json", response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert body.get("error") == code, body
    message = body.get("message")
    assert isinstance(message, str), body
    assert message.strip(), body


def check_published(response: httpx.Response, channel: str) -> str:
    assert response.status_code == 202, f"publish: {response.status_code} {response.text[:500]}"
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) == {"channel", "id"}, body
    assert body["channel"] == channel, body
    event_id = body["id"]
    assert isinstance(event_id, str), body
    assert event_id, body
    return event_id


JSON_HEADERS = {"Content-Type": "application/json"}


def json_body(data: Any) -> bytes:
    """The body for `data` (httpx's json=None would send no body at all)."""
    return json.dumps(data, ensure_ascii=False).encode()


def publish(client: httpx.Client, channel: str, data: Any) -> str:
    """Publish one event over HTTP; its id."""
    response = client.post(
        f"/channels/{channel}/events", content=json_body(data), headers=JSON_HEADERS
    )
    return check_published(response, channel)


async def apublish(client: httpx.AsyncClient, channel: str, data: Any) -> str:
    response = await client.post(
        f"/channels/{channel}/events", content=json_body(data), headers=JSON_HEADERS
    )
    return check_published(response, channel)


def http_client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=TIMEOUT)


def async_client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT)


# --- waiting and metrics ---------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.05)


async def await_until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {DEADLINE} s waiting for {what}")
        await asyncio.sleep(0.05)


def parse_metric(text: str, name: str, labels: str = "") -> float | None:
    sample = name + "{" + labels + "}" if labels else name
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[1])
    return None


async def ametric(client: httpx.AsyncClient, name: str, labels: str = "") -> float:
    """One sample from /metrics, without blocking the event loop the clients run on."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    value = parse_metric(response.text, name, labels)
    assert value is not None, f"no sample {name}{{{labels}}} in /metrics"
    return value


def wait_for_metric(
    server: Server, name: str, labels: str, expected: float, timeout: float = DEADLINE
) -> None:
    seen: list[float] = []

    def reached() -> bool:
        seen.append(server.metric(name, labels))
        return seen[-1] == expected

    try:
        wait_until(reached, f"{name}{{{labels}}} == {expected}", timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}; last value {seen[-1] if seen else None}") from None


async def await_metric(client: httpx.AsyncClient, name: str, labels: str, expected: float) -> None:
    seen: list[float] = []

    async def reached() -> bool:
        seen.append(await ametric(client, name, labels))
        return seen[-1] == expected

    try:
        await await_until(reached, f"{name}{{{labels}}} == {expected}")
    except AssertionError as error:
        raise AssertionError(f"{error}; last value {seen[-1] if seen else None}") from None


@asynccontextmanager
async def waiting_for(what: str) -> AsyncIterator[None]:
    """Fail, naming what never came, if the block takes longer than DEADLINE."""
    try:
        async with asyncio.timeout(DEADLINE):
            yield
    except TimeoutError:
        raise AssertionError(f"gave up after {DEADLINE} s waiting for {what}") from None


# --- streams over httpx ----------------------------------------------------------------------


async def byte_lines(response: httpx.Response) -> AsyncIterator[bytes]:
    """The lines of a streamed body, split on LF only (JSON may hold U+2028 unescaped)."""
    pending = bytearray()
    async for chunk in response.aiter_bytes():
        searched = len(pending)
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", max(start, searched))) >= 0:
            yield bytes(pending[start:end])
            start = end + 1
        del pending[:start]
    assert not pending, f"the stream ended inside a line: {bytes(pending[:200])!r}"


@dataclass
class SSEFrame:
    """One server-sent frame: its fields in order, or one comment line."""

    fields: list[tuple[str, str]] = field(default_factory=list)
    comment: str | None = None

    def value(self, name: str) -> str | None:
        values = [value for key, value in self.fields if key == name]
        return values[-1] if values else None

    @property
    def names(self) -> list[str]:
        return [key for key, _ in self.fields]

    @property
    def id(self) -> str | None:
        return self.value("id")

    @property
    def event(self) -> str | None:
        return self.value("event")

    @property
    def retry(self) -> str | None:
        return self.value("retry")

    @property
    def data(self) -> str | None:
        lines = [value for key, value in self.fields if key == "data"]
        return "\n".join(lines) if lines else None

    def json(self) -> Any:
        assert self.data is not None, self
        return json.loads(self.data)

    @property
    def is_event(self) -> bool:
        """An event for `onmessage`: data, and no `event:` field."""
        return self.data is not None and self.event is None


async def sse_frames(response: httpx.Response) -> AsyncIterator[SSEFrame]:
    """Parse text/event-stream. A comment is yielded at once, as its own frame."""
    frame = SSEFrame()
    async for raw in byte_lines(response):
        line = raw.decode().removesuffix("\r")
        if not line:
            if frame.fields:
                yield frame
                frame = SSEFrame()
        elif line.startswith(":"):
            yield SSEFrame(comment=line[1:].removeprefix(" "))
        else:
            name, _, value = line.partition(":")
            frame.fields.append((name, value.removeprefix(" ")))
    assert not frame.fields, f"the stream ended inside a frame: {frame}"


class SSEStream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._frames = sse_frames(response)
        self._frames_read = 0

    async def next(self) -> SSEFrame | None:
        """The next frame or comment; None when the stream has ended."""
        async with waiting_for("the next SSE frame"):
            frame = await anext(self._frames, None)
        if frame is not None and frame.comment is None:
            self._frames_read += 1
        return frame

    async def next_event(self) -> SSEFrame:
        """The next event, skipping heartbeats and the first `retry:`; fails on anything else."""
        while True:
            frame = await self.next()
            assert frame is not None, "the SSE stream ended while an event was expected"
            if frame.comment is not None:
                continue
            if frame.names == ["retry"] and self._frames_read == 1:
                continue  # the stream's first frame
            assert frame.is_event, f"expected an event, got {frame}"
            return frame

    async def rest(self) -> list[SSEFrame]:
        """Every frame up to the end of the stream, heartbeats left out."""
        frames: list[SSEFrame] = []
        while (frame := await self.next()) is not None:
            if frame.comment is None:
                frames.append(frame)
        return frames


async def error_of(response: httpx.Response, status: int, code: str) -> None:
    await response.aread()
    assert_error(response, status, code)


@asynccontextmanager
async def open_sse(
    client: httpx.AsyncClient,
    channel: str,
    *,
    last_event_id: str | None = None,
    params: dict[str, str] | None = None,
) -> AsyncIterator[SSEStream]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    url = f"/channels/{channel}/sse"
    async with client.stream("GET", url, headers=headers, params=params) as response:
        if response.status_code != 200:
            await response.aread()
            raise AssertionError(f"GET {url}: {response.status_code} {response.text[:500]}")
        yield SSEStream(response)


async def amarker(client: httpx.AsyncClient, channel: str) -> str:
    """Publish a marker event. A stream that resumes from its id gets every later event,
    whenever its subscription takes effect: no race between subscribing and publishing."""
    return await apublish(client, channel, {"marker": channel})


class NDJSONStream:
    HEARTBEAT = ""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = byte_lines(response)

    async def next_line(self) -> str | None:
        """The next line ('' is a heartbeat); None when the stream has ended."""
        async with waiting_for("the next NDJSON line"):
            line = await anext(self._lines, None)
        return None if line is None else line.decode()

    async def next_object(self) -> dict[str, Any]:
        """The next JSON line, skipping heartbeats."""
        while True:
            line = await self.next_line()
            assert line is not None, "the NDJSON stream ended while a line was expected"
            if line == self.HEARTBEAT:
                continue
            value = json.loads(line)
            assert isinstance(value, dict), f"each NDJSON line is an object, got {line[:200]}"
            return value

    async def next_event(self) -> dict[str, Any]:
        value = await self.next_object()
        assert set(value) == {"channel", "id", "data"}, f"expected an event, got {value}"
        return value

    async def rest(self) -> list[dict[str, Any]]:
        """Every JSON line up to the end of the stream, heartbeats left out."""
        values: list[dict[str, Any]] = []
        while (line := await self.next_line()) is not None:
            if line != self.HEARTBEAT:
                value = json.loads(line)
                assert isinstance(value, dict), line[:200]
                values.append(value)
        return values


@asynccontextmanager
async def open_ndjson(
    client: httpx.AsyncClient, channel: str, *, last_event_id: str | None = None
) -> AsyncIterator[NDJSONStream]:
    params = {} if last_event_id is None else {"last_event_id": last_event_id}
    url = f"/channels/{channel}/ndjson"
    async with client.stream("GET", url, params=params) as response:
        if response.status_code != 200:
            await response.aread()
            raise AssertionError(f"GET {url}: {response.status_code} {response.text[:500]}")
        yield NDJSONStream(response)


# --- WebSocket -------------------------------------------------------------------------------


def ws_connect(
    server: Server,
    *,
    origin: str | None = None,
    max_queue: int = 16,
    max_size: int | None = 2**20,
) -> connect:
    """A WebSocket client; without `origin` it sends no Origin header, as non-browser clients."""
    return connect(
        server.ws_url,
        origin=None if origin is None else Origin(origin),
        max_queue=max_queue,
        max_size=max_size,
        ping_interval=None,
        open_timeout=DEADLINE,
        close_timeout=DEADLINE,
    )


class WSSession:
    """JSON messages over one socket; replies are matched by `ref`, other messages queue."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pending: deque[dict[str, Any]] = deque()
        self._refs = itertools.count(1)

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def receive(self) -> dict[str, Any]:
        """The next message from the server, queued ones first."""
        if self.pending:
            return self.pending.popleft()
        async with waiting_for("a WebSocket message"):
            text = await self.ws.recv()
        assert isinstance(text, str), f"expected a text frame, got {text!r:.200}"
        value = json.loads(text)
        assert isinstance(value, dict), f"expected a JSON object, got {text[:200]}"
        return value

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send with a fresh ref; the reply that echoes it. Other messages stay queued."""
        ref = f"r{next(self._refs)}"
        await self.send({**message, "ref": ref})
        seen: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(DEADLINE):
                while True:
                    text = await self.ws.recv()
                    assert isinstance(text, str), f"expected a text frame, got {text!r:.200}"
                    value = json.loads(text)
                    assert isinstance(value, dict), f"expected a JSON object, got {text[:200]}"
                    if value.get("ref") == ref:
                        self.pending.extend(seen)
                        return value
                    seen.append(value)
        except TimeoutError:
            raise AssertionError(f"no reply to {message} echoing its ref; got {seen}") from None

    async def until_closed(self) -> tuple[list[dict[str, Any]], int | None]:
        """Every message until the server closes the socket, and the close code it sent
        (None: the connection ended without a close frame)."""
        messages = list(self.pending)
        self.pending.clear()
        try:
            while True:
                async with waiting_for("the server to close the socket"):
                    text = await self.ws.recv()
                assert isinstance(text, str), f"expected a text frame, got {text!r:.200}"
                messages.append(json.loads(text))
        except ConnectionClosed as closed:
            return messages, None if closed.rcvd is None else closed.rcvd.code

    async def subscribe(self, channel: str, last_event_id: str | None = None) -> None:
        message: dict[str, Any] = {"op": "subscribe", "channel": channel}
        if last_event_id is not None:
            message["last_event_id"] = last_event_id
        reply = await self.request(message)
        assert reply.get("op") == "subscribed", reply
        assert reply.get("channel") == channel, reply

    async def next_event(self) -> dict[str, Any]:
        value = await self.receive()
        assert value.get("op") == "event", f"expected an event, got {value}"
        assert set(value) == {"op", "channel", "id", "data"}, value
        return value

    async def ping(self) -> None:
        reply = await self.request({"op": "ping"})
        assert reply.get("op") == "pong", reply


# --- any protocol ----------------------------------------------------------------------------


class Listener:
    """One subscriber to one channel over one protocol, whichever it is."""

    def __init__(
        self,
        protocol: str,
        stream: SSEStream | NDJSONStream | None = None,
        session: WSSession | None = None,
    ) -> None:
        self.protocol = protocol
        self.stream = stream
        self.session = session
        self.received: list[tuple[str, Any]] = []

    async def next_event(self) -> tuple[str, Any]:
        """The next event as (id, data); fails on a reset, an error or the end of the stream."""
        if isinstance(self.stream, SSEStream):
            frame = await self.stream.next_event()
            assert frame.id is not None, frame
            event: tuple[str, Any] = (frame.id, frame.json())
        elif isinstance(self.stream, NDJSONStream):
            line = await self.stream.next_event()
            event = (line["id"], line["data"])
        else:
            assert self.session is not None
            message = await self.session.next_event()
            event = (message["id"], message["data"])
        self.received.append(event)
        return event

    async def events(self, count: int) -> list[tuple[str, Any]]:
        return [await self.next_event() for _ in range(count)]

    async def still_open(self) -> None:
        """Fail unless the connection is open: a heartbeat comes (SSE, NDJSON) or a pong."""
        if isinstance(self.stream, SSEStream):
            frame = await self.stream.next()
            assert frame is not None, "the SSE stream ended"
            assert frame.comment == "ping", f"expected a heartbeat, got {frame}"
        elif isinstance(self.stream, NDJSONStream):
            line = await self.stream.next_line()
            assert line == NDJSONStream.HEARTBEAT, f"expected a heartbeat, got {line!r}"
        else:
            assert self.session is not None
            await self.session.ping()


@asynccontextmanager
async def listen(
    server: Server, protocol: str, channel: str, *, last_event_id: str | None = None
) -> AsyncIterator[Listener]:
    """Subscribe over `protocol` ("sse", "ndjson" or "websocket"); live once it is yielded."""
    if protocol == "websocket":
        async with ws_connect(server) as ws:
            session = WSSession(ws)
            await session.subscribe(channel, last_event_id)
            yield Listener(protocol, session=session)
        return
    async with async_client(server) as client:
        if protocol == "sse":
            async with open_sse(client, channel, last_event_id=last_event_id) as sse:
                yield Listener(protocol, stream=sse)
        else:
            async with open_ndjson(client, channel, last_event_id=last_event_id) as ndjson:
                yield Listener(protocol, stream=ndjson)


# --- the server process -----------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """The process and its children (gunicorn's workers), from /proc."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
        for child in children:
            pids += process_tree(int(child))
    return pids


def rss_bytes(server: Server) -> int:
    """The resident memory of the server's processes, from /proc."""
    total = 0
    for pid in process_tree(server.process.pid):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


# --- raw sockets: clients that misbehave -----------------------------------------------------


def raw_connect(server: Server, *, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(DEADLINE)
    sock.connect(("127.0.0.1", server.port))
    return sock


def raw_get(
    server: Server, path: str, headers: dict[str, str] | None = None, **kw: Any
) -> socket.socket:
    """Open a connection and send one GET, reading nothing."""
    sock = raw_connect(server, **kw)
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def abort(sock: socket.socket) -> None:
    """Close with a TCP RST, as a client that crashed or lost its network."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lowercase names) and the bytes read past the head."""
    data = b""
    deadline = time.monotonic() + DEADLINE
    while b"\r\n\r\n" not in data:
        assert time.monotonic() < deadline, "no response head"
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before the response head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, rest


@dataclass
class RawEnd:
    """How a raw response ended, and its body (de-chunked as far as it got)."""

    how: str  # "terminator" (last chunk), "eof", or "reset"
    body: bytes


def take_chunks(buffer: bytearray, body: bytearray) -> bool:
    """Move the complete chunks of a chunked body from `buffer` to `body`; True at the last."""
    while (size_end := buffer.find(b"\r\n")) >= 0:
        size = int(bytes(buffer[:size_end]).split(b";")[0], 16)
        if len(buffer) < size_end + 2 + size + 2:
            return False
        body += buffer[size_end + 2 : size_end + 2 + size]
        del buffer[: size_end + 2 + size + 2]
        if size == 0:
            return True
    return False


def read_to_end(sock: socket.socket) -> tuple[int, RawEnd]:
    """Read a response to its end: the last chunk, EOF or a reset; fail if it never ends."""
    deadline = time.monotonic() + DEADLINE
    status, headers, data = read_head(sock)
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    body = bytearray()
    buffer = bytearray(data)
    while True:
        if chunked and take_chunks(buffer, body):
            return status, RawEnd("terminator", bytes(body))
        if not chunked:
            body += buffer
            buffer.clear()
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = sock.recv(1 << 20)
        except ConnectionResetError:
            return status, RawEnd("reset", bytes(body))
        except TimeoutError:
            raise AssertionError(f"the response did not end within {DEADLINE} s") from None
        if not chunk:
            return status, RawEnd("eof", bytes(body))
        buffer += chunk


def ws_handshake(server: Server, **kw: Any) -> socket.socket:
    """A raw WebSocket connection, upgraded, nothing read past the 101 response."""
    key = base64.b64encode(os.urandom(16)).decode()
    sock = raw_get(
        server,
        "/ws",
        {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
        },
        **kw,
    )
    status, _, rest = read_head(sock)
    assert status == 101, status
    assert not rest, "the server sent a frame before the client did"
    return sock


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final, masked client frame."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return head + mask + masked
