"""Limits a client meets: JSON others cannot read, connections, publish rate, queued replies.

Each limit is set low through the environment so that a test can reach it;
docs/limits.md gives the defaults.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from .conftest import PROTOCOLS, Server, StartServer
from .helpers import (
    JSON_HEADERS,
    WSSession,
    assert_error,
    async_client,
    await_metric,
    http_client,
    listen,
    publish,
    unique_channel,
    wait_for_metric,
    wait_until,
    ws_connect,
    ws_frame,
    ws_handshake,
)

# The nesting the contract accepts, and one level more.
MAX_JSON_DEPTH = 64

# JSON texts that a strict parser elsewhere cannot read, or that would be written out as
# something that is not JSON (`1e999` becomes Infinity), or that nest past MAX_JSON_DEPTH.
UNREADABLE_JSON = [
    "1e999",
    "-1e999",
    "[1e400]",
    '{"a": -12e9999}',
    "NaN",
    "-Infinity",
    "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
    '{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1),
    "[" * 30_000 + "]" * 30_000,
]


@pytest.mark.parametrize("body", UNREADABLE_JSON, ids=lambda body: body[:16])
def test_json_others_cannot_read_is_bad_json(server: Server, body: str) -> None:
    with http_client(server) as client:
        response = client.post(
            f"/channels/{unique_channel()}/events", content=body, headers=JSON_HEADERS
        )
        assert_error(response, 400, "bad_json")
        assert client.get("/healthz").status_code == 200


def test_nesting_up_to_the_limit_is_delivered(server: Server) -> None:
    deepest: Any = 1
    for _ in range(MAX_JSON_DEPTH):
        deepest = [deepest]
    channel = unique_channel()
    with http_client(server) as client:
        publish(client, channel, deepest)
        events = client.get(f"/channels/{channel}/events").json()["events"]
    assert [event["data"] for event in events] == [deepest]


@pytest.mark.skipif("websocket" not in PROTOCOLS, reason="the project serves no WebSocket")
@pytest.mark.parametrize("data", UNREADABLE_JSON, ids=lambda body: body[:16])
def test_websocket_message_others_cannot_read_is_bad_json(server: Server, data: str) -> None:
    """The socket answers `bad_json` and keeps working: it subscribes and gets events."""
    channel = unique_channel()

    async def scenario() -> None:
        async with ws_connect(server) as ws, async_client(server) as client:
            session = WSSession(ws)
            await session.send('{"op": "publish", "channel": "c", "ref": 1, "data": ' + data + "}")
            reply = await session.receive()
            assert (reply["op"], reply["code"]) == ("error", "bad_json"), reply
            await session.subscribe(channel)
            response = await client.post(
                f"/channels/{channel}/events", content=b"[1]", headers=JSON_HEADERS
            )
            assert response.status_code == 202, response.text
            assert (await session.next_event())["data"] == [1]

    asyncio.run(scenario())


@pytest.mark.parametrize("limit", ["¹", "\uff11\uff10", "\u0663", "1.0", "+5", " 5"])
def test_limit_takes_ascii_digits_only(server: Server, limit: str) -> None:
    with http_client(server) as client:
        response = client.get(f"/channels/{unique_channel()}/events", params={"limit": limit})
    assert_error(response, 400, "bad_limit")


# --- connections ----------------------------------------------------------------------------


async def refused_stream(server: Server, protocol: str) -> httpx.Response | tuple[Any, int | None]:
    """Try one more connection: the HTTP answer of a stream, or a socket's messages and close."""
    channel = unique_channel()
    if protocol == "websocket":
        async with ws_connect(server) as ws:
            session = WSSession(ws)
            return await session.until_closed()
    async with async_client(server) as client:
        return await client.get(f"/channels/{channel}/{protocol}")


async def assert_serves(server: Server, protocol: str) -> None:
    channel = unique_channel()
    async with listen(server, protocol, channel) as listener, async_client(server) as client:
        response = await client.post(
            f"/channels/{channel}/events", content=b"1", headers=JSON_HEADERS
        )
        assert response.status_code == 202, response.text
        assert (await listener.next_event())[1] == 1


def assert_refused(answer: httpx.Response | tuple[Any, int | None], status: int) -> None:
    if isinstance(answer, httpx.Response):
        assert_error(answer, status, "too_many_connections")
        assert int(answer.headers["retry-after"]) >= 1, answer.headers
    else:
        messages, code = answer
        assert code == 1013, (messages, code)
        assert [(message["op"], message["code"]) for message in messages] == [
            ("error", "too_many_connections")
        ], messages


# (the limit set to 2, the status of a stream refused past it)
CONNECTION_LIMITS = [
    pytest.param("max_connections", 503, id="process"),
    pytest.param("max_client_connections", 429, id="address"),
]


@pytest.mark.parametrize(("limit", "status"), CONNECTION_LIMITS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_connections_past_a_limit_are_refused(
    start_server: StartServer, protocol: str, limit: str, status: int
) -> None:
    server = start_server(**{limit: "2"})

    async def scenario() -> None:
        async with (
            listen(server, protocol, unique_channel()),
            listen(server, protocol, unique_channel()),
        ):
            assert_refused(await refused_stream(server, protocol), status)
        # Both closed: once the server has seen them go, there is room again.
        async with async_client(server) as client:
            await await_metric(client, "realtime_connections", f'protocol="{protocol}"', 0)
        await assert_serves(server, protocol)

    asyncio.run(scenario())


# --- publish rate ---------------------------------------------------------------------------


def test_publishes_past_the_rate_are_429(start_server: StartServer) -> None:
    server = start_server(publish_rate="0.01", publish_burst="3")
    channel = unique_channel()
    with http_client(server) as client:
        for n in range(3):
            publish(client, channel, n)
        response = client.post(f"/channels/{channel}/events", content=b"3", headers=JSON_HEADERS)
        assert_error(response, 429, "rate_limited")
        assert int(response.headers["retry-after"]) >= 1, response.headers
        # What was refused was not published.
        events = client.get(f"/channels/{channel}/events").json()["events"]
    assert [event["data"] for event in events] == [0, 1, 2]


@pytest.mark.skipif("websocket" not in PROTOCOLS, reason="the project serves no WebSocket")
def test_websocket_publishes_past_the_rate_get_an_error(start_server: StartServer) -> None:
    server = start_server(publish_rate="0.01", publish_burst="2")
    channel = unique_channel()

    async def scenario() -> None:
        async with ws_connect(server) as ws:
            session = WSSession(ws)
            for n in range(2):
                reply = await session.request({"op": "publish", "channel": channel, "data": n})
                assert reply["op"] == "published", reply
            reply = await session.request({"op": "publish", "channel": channel, "data": 2})
            assert (reply["op"], reply["code"]) == ("error", "rate_limited"), reply
            await session.ping()

    asyncio.run(scenario())


# --- what a client that does not read makes the server queue -------------------------------


@pytest.mark.skipif("websocket" not in PROTOCOLS, reason="the project serves no WebSocket")
def test_a_socket_that_sends_pings_and_never_reads_is_cut(start_server: StartServer) -> None:
    """Replies count against the connection's buffer: before, they queued without bound.

    Where the server stops reading once its writes to the client wait (a thread that
    both reads and writes), the stuck write is what shows the client is too slow.
    """
    server = start_server(heartbeat_seconds="1", write_timeout_seconds="2")
    slow_before = server.metric("realtime_slow_consumer_disconnects_total")
    sock = ws_handshake(server, rcvbuf=4096)
    sock.settimeout(1)
    ping = ws_frame(json.dumps({"op": "ping", "ref": "x" * 128}).encode())
    try:
        # Far more replies than a buffer holds, until the server stops taking them.
        for _ in range(200):
            sock.sendall(ping * 500)
    except (TimeoutError, ConnectionError):
        pass
    try:
        wait_until(
            lambda: server.metric("realtime_slow_consumer_disconnects_total") > slow_before,
            "the server to cut a client that never reads its replies",
        )
        wait_for_metric(server, "realtime_connections", 'protocol="websocket"', 0)
    finally:
        sock.close()
    with http_client(server) as client:
        assert client.get("/healthz").status_code == 200


@pytest.mark.skipif("websocket" not in PROTOCOLS, reason="the project serves no WebSocket")
def test_a_reading_socket_gets_every_reply(server: Server) -> None:
    """The limit is on what waits, not on how much a client asks: one that reads is never cut."""

    async def scenario() -> None:
        async with ws_connect(server) as ws:
            session = WSSession(ws)
            for batch in range(10):
                for n in range(200):
                    await session.send({"op": "ping", "ref": f"{batch}-{n}"})
                for n in range(200):
                    reply = await session.receive()
                    assert reply == {"op": "pong", "ref": f"{batch}-{n}"}, reply

    asyncio.run(scenario())
    assert server.process.poll() is None
