"""The peer most people would pick: sse-starlette's EventSourceResponse fed by encode/broadcaster.

broadcaster's memory backend gives each client its own queue; the message is
JSON-encoded once at publish and sse-starlette formats the SSE frame per
client. Run: `uvicorn bench.peers.sse_starlette_app:app`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broadcaster import Broadcast
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

broadcast = Broadcast("memory://")


async def sse(request: Request) -> Response:
    channel = request.path_params["channel"]

    async def events() -> AsyncIterator[ServerSentEvent]:
        async with broadcast.subscribe(channel) as subscriber:
            yield ServerSentEvent(retry=3000)
            async for event in subscriber:
                if event is not None:
                    yield ServerSentEvent(data=event.message)

    return EventSourceResponse(events(), ping=15)


async def publish(request: Request) -> Response:
    channel = request.path_params["channel"]
    await broadcast.publish(channel, json.dumps(await request.json()))
    return JSONResponse({"channel": channel}, status_code=202)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with broadcast:
        yield


app = Starlette(
    routes=[
        Route("/channels/{channel}/sse", sse),
        Route("/channels/{channel}/events", publish, methods=["POST"]),
    ],
    lifespan=lifespan,
)
