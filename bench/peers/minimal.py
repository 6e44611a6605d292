"""The floor: plain ASGI, one encode per event, the same bytes to every subscriber's `send`.

No heartbeat, no buffer, no resume: nothing a real app can do with less work
per delivered event. Run: `uvicorn bench.peers.minimal:app`.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]

ROUTE = re.compile(r"/channels/([^/]+)/(sse|events)")
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]

subscribers: dict[str, set[Any]] = {}
ids = itertools.count(1)


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    match = ROUTE.fullmatch(scope["path"])
    if match is None:
        await respond(send, 404, b'{"error":"not_found"}')
    elif match[2] == "sse" and scope["method"] == "GET":
        await stream(match[1], receive, send)
    elif match[2] == "events" and scope["method"] == "POST":
        await publish(match[1], receive, send)
    else:
        await respond(send, 405, b'{"error":"method_not_allowed"}')


async def stream(channel: str, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    await send({"type": "http.response.body", "body": b"retry: 3000\n\n", "more_body": True})
    listeners = subscribers.setdefault(channel, set())
    listeners.add(send)
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    finally:
        listeners.discard(send)


async def publish(channel: str, receive: Any, send: Any) -> None:
    data = json.loads(await read_body(receive))
    event_id = next(ids)
    frame = f"id: {event_id}\ndata: {json.dumps(data)}\n\n".encode()
    message = {"type": "http.response.body", "body": frame, "more_body": True}
    for subscriber in list(subscribers.get(channel, ())):
        await subscriber(message)
    await respond(send, 202, json.dumps({"channel": channel, "id": str(event_id)}).encode())


async def respond(send: Any, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def lifespan(receive: Any, send: Any) -> None:
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})
