"""The load generator: its own process, so the server's open files and CPU stay its own.

Raw asyncio sockets: each SSE stream sends one request and then only counts
`data:` in what arrives, so the client stays cheap next to the server. Events
are published in lock-step unless asked for a burst (the next one after every
subscriber has the last one), so no app gets to batch a burst. The parent
drives it with one JSON command a line on stdin and reads one JSON reply a
line on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, cast

try:
    import uvloop  # the cheaper loop, when it is there
except ImportError:
    uvloop = None

HOST = "127.0.0.1"
MARK = b"data:"
# An SSE stream is subscribed once its first frame, `retry:`, has come.
READY = b"retry:"
MAX_HEAD = 65536
PADDING = "x" * 64


class Group:
    """The streams open to one app, and how many events they have received."""

    def __init__(self, port: int, channel: str) -> None:
        self.port = port
        self.channel = channel
        self.streams: list[Stream] = []
        self.count = 0
        self.target = 0
        self.reached: asyncio.Future[None] | None = None
        self.lost = 0
        self.closing = False
        self.publisher: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def add(self, found: int) -> None:
        self.count += found
        reached = self.reached
        if reached is not None and self.count >= self.target and not reached.done():
            reached.set_result(None)

    def lose(self) -> None:
        self.lost += 1
        reached = self.reached
        if not self.closing and reached is not None and not reached.done():
            reached.set_exception(ConnectionError("the server closed an SSE stream"))


class Stream(asyncio.Protocol):
    def __init__(self, group: Group, request: bytes) -> None:
        self.group = group
        self.request = request
        self.head = b""
        self.tail = b""
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.ready.done():
            self.head += data
            if READY in self.head or b"\r\n\r\n" in self.head or len(self.head) > MAX_HEAD:
                self._check_head()
            return
        # A mark split over two reads has at most four bytes in the first one.
        chunk = self.tail + data
        found = chunk.count(MARK)
        if found:
            self.group.add(found)
        self.tail = chunk[-4:]

    def _check_head(self) -> None:
        if not self.head.startswith(b"HTTP/1.1 200"):
            status = self.head.split(b"\r\n", 1)[0].decode(errors="replace")
            self.ready.set_exception(ConnectionError(f"the server answered {status!r}"))
        elif READY in self.head:
            self.ready.set_result(None)
            self.group.add(self.head.count(MARK))
            self.tail = self.head[-4:]
        elif len(self.head) > MAX_HEAD:
            self.ready.set_exception(ConnectionError("no retry frame in the first 64 KiB"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the first frame"))
        self.group.lose()


async def open_streams(group: Group, count: int, concurrency: int) -> None:
    """Open `count` more streams, `concurrency` at a time (uvicorn's backlog is 2048)."""
    loop = asyncio.get_running_loop()
    request = (
        f"GET /channels/{group.channel}/sse HTTP/1.1\r\nHost: {HOST}:{group.port}\r\n"
        "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    ).encode()

    async def one() -> None:
        stream = Stream(group, request)
        await loop.create_connection(lambda: stream, HOST, group.port)
        group.streams.append(stream)
        await stream.ready

    for start in range(0, count, concurrency):
        await asyncio.gather(*(one() for _ in range(min(concurrency, count - start))))


async def post(group: Group, body: bytes) -> None:
    if group.publisher is None:
        group.publisher = await asyncio.open_connection(HOST, group.port)
    reader, writer = group.publisher
    writer.write(
        f"POST /channels/{group.channel}/events HTTP/1.1\r\nHost: {HOST}:{group.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    answer = await reader.readexactly(length)
    if not head.startswith(b"HTTP/1.1 202"):
        raise ConnectionError(f"publishing failed: {head[:40]!r} {answer[:200]!r}")


async def publish(group: Group, events: int, *, burst: bool) -> dict[str, Any]:
    """Publish `events`, each after every open stream has received the one before.

    With `burst`, publish each as soon as the last one is accepted, and wait for
    the deliveries at the end. One keep-alive connection per round: between
    rounds a server may close it.
    """
    subscribers = len(group.streams)
    start_count = group.count
    started = time.perf_counter()
    try:
        for seq in range(events):
            await post(group, json.dumps({"seq": seq, "text": PADDING}).encode())
            if burst and seq + 1 < events:
                continue
            group.target = start_count + subscribers * (seq + 1)
            if group.count < group.target:
                if group.lost:
                    raise ConnectionError("the server closed an SSE stream")
                group.reached = asyncio.get_running_loop().create_future()
                await group.reached  # raises if a stream is lost meanwhile
    finally:
        group.reached = None
        if group.publisher is not None:
            group.publisher[1].close()
            group.publisher = None
    return {"delivered": group.count - start_count, "seconds": time.perf_counter() - started}


async def close(group: Group) -> int:
    group.closing = True
    for stream in group.streams:
        if stream.transport is not None:
            stream.transport.close()
    if group.publisher is not None:
        group.publisher[1].close()
    await asyncio.sleep(0)
    return len(group.streams)


async def handle(groups: dict[str, Group], command: dict[str, Any]) -> dict[str, Any]:
    op = command["op"]
    key = command.get("key", "")
    started = time.perf_counter()
    if op == "open":
        group = groups.setdefault(key, Group(command["port"], command["channel"]))
        try:
            async with asyncio.timeout(command["timeout"]):
                await open_streams(group, command["count"], command["concurrency"])
        except (OSError, TimeoutError) as error:
            return {"error": f"{type(error).__name__}: {error}", "open": len(group.streams)}
        return {"open": len(group.streams), "seconds": time.perf_counter() - started}
    if op == "publish":
        group = groups[key]
        try:
            async with asyncio.timeout(command["timeout"]):
                return await publish(group, command["events"], burst=command.get("burst", False))
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as error:
            expected = len(group.streams) * command["events"]
            return {"error": f"{type(error).__name__}: {error}", "expected": expected}
    if op == "close":
        return {"closed": await close(groups.pop(key))} if key in groups else {"closed": 0}
    return {"error": f"unknown op {op!r}"}


async def serve() -> None:
    loop = asyncio.get_running_loop()
    groups: dict[str, Group] = {}
    try:
        # Bounded by the parent: it sends `quit` or closes stdin, and this process dies with it.
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = json.loads(line)
            if command["op"] == "quit":
                break
            reply = await handle(groups, command)
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        for group in groups.values():
            await close(group)


def main() -> None:
    if uvloop is None:
        asyncio.run(serve())
    else:
        uvloop.run(serve())


if __name__ == "__main__":
    main()
