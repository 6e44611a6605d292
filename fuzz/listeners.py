"""A subscriber over any protocol, live once it is yielded, whose events are checked."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import httpx
from websockets.asyncio.client import ClientConnection, connect

from .checks import DEADLINE, check_answer, id_key, stream_events, valid_json, within
from .conftest import Server

REPLY_OPS = {"subscribed", "unsubscribed", "published", "pong", "error", "authenticated"}


def ws_connect(server: Server) -> connect:
    # No Origin, as clients that are not browsers; a frame of any size comes back.
    return connect(
        server.ws_url,
        max_size=None,
        ping_interval=None,
        open_timeout=DEADLINE,
        close_timeout=DEADLINE,
    )


def ws_message(text: str | bytes) -> dict[str, Any]:
    """Check one frame from the server: a JSON object of the contract."""
    assert isinstance(text, str), f"the server sent a binary frame: {text[:300]!r}"
    value = valid_json(text, "a WebSocket message")
    assert isinstance(value, dict), text[:300]
    op = value.get("op")
    if op == "event":
        assert set(value) == {"op", "channel", "id", "data"}, value
        id_key(value["id"])
    elif op == "reset":
        assert set(value) == {"op", "channel"}, value
    elif op == "error":
        assert isinstance(value.get("code"), str), value
        assert isinstance(value.get("message"), str), value
        assert set(value) <= {"op", "code", "message", "ref"}, value
    elif op == "authenticated":
        assert isinstance(value.get("subject"), str), value
        assert value.get("expires") is None or isinstance(value["expires"], int | float), value
        assert set(value) <= {"op", "subject", "expires", "ref"}, value
    else:
        assert op in REPLY_OPS, value
    return value


async def ws_events(ws: ClientConnection, channel: str) -> AsyncIterator[tuple[str, Any]]:
    while True:
        message = ws_message(await ws.recv())
        if message["op"] == "event":
            assert message["channel"] == channel, message
            yield message["id"], message["data"]
        else:
            assert message["op"] == "reset", f"unexpected message: {message}"


@asynccontextmanager
async def listen(
    server: Server, client: httpx.AsyncClient, protocol: str, channel: str
) -> AsyncIterator[AsyncIterator[tuple[str, Any]]]:
    """Subscribe to a valid channel; yields its events as (id, data)."""
    if protocol == "websocket":
        async with ws_connect(server) as ws:
            await ws.send(json.dumps({"op": "subscribe", "channel": channel, "ref": "listen"}))
            reply = ws_message(await within(ws.recv(), "the subscribed reply"))
            assert reply == {"op": "subscribed", "channel": channel, "ref": "listen"}, reply
            yield ws_events(ws, channel)
        return
    url = f"/channels/{quote(channel, safe='')}/{protocol}"
    async with client.stream("GET", url) as response:
        if response.status_code != 200:
            body = await response.aread()
            check_answer(response, body)
            raise AssertionError(f"GET {url}: {response.status_code} {body[:500]!r}")
        yield stream_events(response, protocol, channel)
