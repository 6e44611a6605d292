"""Publish, history, streams and any other request, with arbitrary input."""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from . import strategies as s
from .checks import (
    DEADLINE,
    STREAM_TYPES,
    check_answer,
    id_key,
    media_type,
    stream_events,
    valid_json,
    within,
)
from .conftest import Server
from .listeners import listen

CHANNEL = re.compile(s.CHANNEL_REGEX)
# A channel with history, for history queries and resumed streams.
HISTORY = "fz-history"
HISTORY_EVENTS = 5


def is_channel(name: str) -> bool:
    return CHANNEL.fullmatch(name) is not None


def client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=DEADLINE)


@pytest.fixture(scope="module")
def history(server: Server) -> list[str]:
    """The ids of the events published to HISTORY before the tests."""
    ids = []
    with httpx.Client(base_url=server.url, timeout=DEADLINE) as http:
        for number in range(HISTORY_EVENTS):
            response = http.post(
                f"/channels/{HISTORY}/events",
                content=json.dumps({"n": number}),
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
    return ids


def listeners(protocols: list[str]) -> st.SearchStrategy[str | None]:
    return st.sampled_from([None, "sse", "ndjson", "websocket"]).map(
        lambda protocol: protocol if protocol in protocols else None
    )


# --- publish ---------------------------------------------------------------------------------


async def publish(
    server: Server,
    protocol: str | None,
    channel: str,
    body: bytes,
    headers: dict[str, Any],
) -> httpx.Response:
    """POST the body with a subscriber listening, if the channel is one; whatever is
    accepted must reach it as the same JSON value."""
    path = f"/channels/{s.quoted(channel)}/events"
    async with client(server) as http, AsyncExitStack() as stack:
        events = None
        if protocol is not None and is_channel(channel):
            events = await stack.enter_async_context(listen(server, http, protocol, channel))
        response = await within(http.post(path, content=body, headers=headers), "the answer")
        check_answer(response, response.content)
        if response.status_code != 202:
            return response
        sent = valid_json(body, "an accepted publish body")
        answer = valid_json(response.content, "the publish answer")
        assert isinstance(answer, dict), answer
        assert set(answer) == {"channel", "id"}, answer
        assert answer["channel"] == channel, answer
        id_key(answer["id"])
        if events is not None:
            event_id, data = await within(anext(events), f"the event over {protocol}")
            assert event_id == answer["id"], (event_id, answer)
            assert data == sent, (data, sent)
        return response


@given(
    channel=s.valid_channels | s.any_channels,
    body=s.bodies,
    content_type=s.content_types,
    headers=s.extra_headers,
    data=st.data(),
)
def test_publish_anything(
    server: Server,
    protocols: list[str],
    channel: str,
    body: bytes,
    content_type: bytes | None,
    headers: dict[str, bytes],
    data: st.DataObject,
) -> None:
    """Any body, content type, headers and channel: no 5xx, no traceback; accepted,
    it is valid JSON, the value sent, for a subscriber over any protocol."""
    protocol = data.draw(listeners(protocols), label="listener")
    all_headers: dict[str, Any] = dict(headers)
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    asyncio.run(publish(server, protocol, channel, body, all_headers))
    server.check()


@given(channel=s.valid_channels, value=s.json_values(), data=st.data())
def test_publish_json(
    server: Server, protocols: list[str], channel: str, value: Any, data: st.DataObject
) -> None:
    """Any JSON value, to any channel, as application/json: 202, delivered unchanged."""
    protocol = data.draw(listeners(protocols), label="listener")
    body = json.dumps(value, ensure_ascii=data.draw(st.booleans(), label="ascii")).encode()
    headers = {"Content-Type": "application/json"}
    response = asyncio.run(publish(server, protocol, channel, body, headers))
    assert response.status_code == 202, (response.status_code, response.text[:500])
    server.check()


# --- history ---------------------------------------------------------------------------------

query_values = (
    s.query_values
    | st.integers(min_value=0, max_value=HISTORY_EVENTS + 2).map(str)
    | s.raw_query_values.map(lambda raw: ("raw", raw))
)


def query_part(name: str, value: Any) -> str:
    if isinstance(value, tuple):
        return f"{name}={value[1]}"
    return s.query_part(name, value)


@given(
    segment=st.just(HISTORY) | s.path_segments,
    after=query_values,
    limit=query_values,
    headers=s.extra_headers,
)
def test_history(
    server: Server,
    history: list[str],
    segment: str,
    after: Any,
    limit: Any,
    headers: dict[str, bytes],
) -> None:
    """Any channel, ?after= and ?limit=: no 5xx; a history is valid JSON, in order,
    after `after` and within `limit`."""
    query = "&".join(
        part for part in (query_part("after", after), query_part("limit", limit)) if part
    )

    async def example() -> None:
        async with client(server) as http:
            path = f"/channels/{segment}/events" + (f"?{query}" if query else "")
            response = await within(http.get(path, headers=headers), "the history")
            check_answer(response, response.content)
            if response.status_code != 200:
                return
            body = valid_json(response.content, "the history")
            assert isinstance(body, dict), body
            assert set(body) == {"channel", "events"}, body
            assert isinstance(body["events"], list), body
            keys = []
            for event in body["events"]:
                assert isinstance(event, dict), event
                assert set(event) == {"id", "data"}, event
                keys.append(id_key(event["id"]))
            assert keys == sorted(set(keys)), keys
            if segment == HISTORY and isinstance(limit, str) and limit.isdigit():
                assert len(keys) <= int(limit), (limit, keys)
            if segment == HISTORY and after in history:
                assert all(key > id_key(after) for key in keys), (after, keys)

    asyncio.run(example())
    server.check()


# --- streams ---------------------------------------------------------------------------------

last_event_ids = (
    st.none()
    | st.integers(min_value=0, max_value=HISTORY_EVENTS + 2).map(str).map(str.encode)
    | s.id_texts.map(s.as_header)
    | s.header_values
)


@given(
    segment=st.just(HISTORY) | s.valid_channels | s.path_segments,
    header=last_event_ids,
    query=query_values,
    headers=s.extra_headers,
    data=st.data(),
)
def test_stream(
    server: Server,
    protocols: list[str],
    history: list[str],
    segment: str,
    header: str | bytes | None,
    query: Any,
    headers: dict[str, bytes],
    data: st.DataObject,
) -> None:
    """Open an SSE or NDJSON stream with any Last-Event-ID header, ?last_event_id= and
    headers: no 5xx; a valid channel always opens (a reset when the id cannot be
    resumed); every frame is valid, ids increase, and a later event arrives."""
    streams = [protocol for protocol in ("sse", "ndjson") if protocol in protocols]
    if not streams:
        return
    protocol = data.draw(st.sampled_from(streams), label="protocol")
    all_headers: dict[str, Any] = dict(headers)
    if header is not None:
        all_headers["Last-Event-ID"] = header
    part = query_part("last_event_id", query)
    path = f"/channels/{segment}/{protocol}" + (f"?{part}" if part else "")

    async def example() -> None:
        async with (
            client(server) as http,
            http.stream("GET", path, headers=all_headers) as response,
        ):
            if response.status_code != 200:
                body = await within(response.aread(), "the answer")
                check_answer(response, body)
                assert not (is_channel(segment) and not headers), (
                    f"a valid channel's stream refused: {response.status_code} {body[:500]!r}"
                )
                return
            assert media_type(response) in STREAM_TYPES, response.headers
            if not is_channel(segment):
                return  # Not a channel after all: its %-escapes made one.
            marker = await within(
                http.post(
                    f"/channels/{segment}/events",
                    content=b'{"marker": true}',
                    headers={"Content-Type": "application/json"},
                ),
                "the marker's publish",
            )
            assert marker.status_code == 202, marker.text
            marker_id = marker.json()["id"]
            keys: list[tuple[int, ...]] = []
            events = stream_events(response, protocol, segment)
            while True:
                event_id, event_data = await within(anext(events), "the marker event")
                keys.append(id_key(event_id))
                assert keys == sorted(set(keys)), f"ids out of order: {keys}"
                if event_id == marker_id:
                    assert event_data == {"marker": True}, event_data
                    return

    asyncio.run(example())
    server.check()


# --- any request -----------------------------------------------------------------------------

PATHS = [
    "/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/ws",
    "/static/",
    "/channels",
    "/channels/",
    f"/channels/{HISTORY}",
    f"/channels/{HISTORY}/events",
    f"/channels/{HISTORY}/sse",
    f"/channels/{HISTORY}/ndjson",
    f"/channels/{HISTORY}/events/",
    "//channels//x//events",
    "/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/favicon.ico",
    "/admin/",
]
methods = st.sampled_from(
    ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "get", "PRI"]
) | st.text(s.TOKEN_CHARS, min_size=1, max_size=12)
paths = (
    st.sampled_from(PATHS)
    | st.builds(
        lambda seg, tail: f"/channels/{seg}/{tail}",
        s.path_segments,
        st.sampled_from(["events", "sse", "ndjson", "x", "", "events/x"]),
    )
    | st.builds(lambda seg: f"/{seg}", s.path_segments)
)


@given(
    method=methods,
    path=paths,
    headers=s.extra_headers,
    body=st.none() | st.binary(max_size=200),
)
def test_any_request(
    server: Server, method: str, path: str, headers: dict[str, bytes], body: bytes | None
) -> None:
    """Any method on any path with any headers and body: no 5xx, no traceback."""

    async def example() -> None:
        async with client(server) as http:
            request = http.build_request(method, path, headers=headers, content=body)
            response = await within(http.send(request, stream=True), "the answer")
            try:
                if response.status_code == 200 and media_type(response) in STREAM_TYPES:
                    return  # an open stream: its head is the answer
                content = await within(response.aread(), "the body")
                check_answer(response, content)
            finally:
                await response.aclose()

    asyncio.run(example())
    server.check()
