"""The straightforward way: an asyncio.Queue per client and `asyncio.wait` for every event.

Each client's loop waits on {queue.get(), a heartbeat sleep, disconnect} with
FIRST_COMPLETED, so every event costs two new tasks, a timer and a cancel per
client, plus one JSON encode per client. Run: `uvicorn bench.peers.queue_wait:app`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from bench.peers.minimal import ROUTE, SSE_HEADERS, Scope, lifespan, read_body, respond

HEARTBEAT_SECONDS = 15.0

queues: dict[str, set[asyncio.Queue[tuple[int, Any]]]] = {}
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
        data = json.loads(await read_body(receive))
        event_id = next(ids)
        for queue in queues.get(match[1], ()):
            queue.put_nowait((event_id, data))
        await respond(send, 202, json.dumps({"channel": match[1], "id": str(event_id)}).encode())
    else:
        await respond(send, 405, b'{"error":"method_not_allowed"}')


async def wait_for_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def stream(channel: str, receive: Any, send: Any) -> None:
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
    listeners = queues.setdefault(channel, set())
    listeners.add(queue)
    disconnect = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await send({"type": "http.response.body", "body": b"retry: 3000\n\n", "more_body": True})
        while True:
            get = asyncio.ensure_future(queue.get())
            heartbeat = asyncio.ensure_future(asyncio.sleep(HEARTBEAT_SECONDS))
            done, _ = await asyncio.wait(
                {get, heartbeat, disconnect}, return_when=asyncio.FIRST_COMPLETED
            )
            heartbeat.cancel()
            if disconnect in done:
                get.cancel()
                return
            if get in done:
                event_id, data = get.result()
                body = f"id: {event_id}\ndata: {json.dumps(data)}\n\n".encode()
            else:
                get.cancel()
                body = b": ping\n\n"
            await send({"type": "http.response.body", "body": body, "more_body": True})
    finally:
        listeners.discard(queue)
        disconnect.cancel()
