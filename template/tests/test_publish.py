"""POST /channels/{channel}/events: any JSON value in, 202 and an id out; every error is JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from itertools import pairwise
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from .conftest import Server
from .helpers import (
    BAD_CHANNELS,
    JSON_HEADERS,
    apublish,
    assert_error,
    async_client,
    check_published,
    http_client,
    id_key,
    json_body,
    publish,
    unique_channel,
)

MAX_MESSAGE_BYTES = 65536  # the contract's default; the `server` fixture does not change it

JSON_VALUES: list[Any] = [
    {"text": "hello", "nested": {"list": [1, 2, None], "flag": False}},
    [1, "two", 3.5, None, True, {"k": []}],
    "a string with ü, 😀, a \u2028 line separator and a\nnewline",
    "",
    42,
    -17.25,
    10**30,
    0,
    None,
    True,
    False,
    {},
    [],
]

GOOD_CHANNELS = ["a" * 128, "A", "0", "Az09_.:-", "room:42.sub-topic_x"]


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with http_client(server) as client:
        yield client


@pytest.mark.parametrize("data", JSON_VALUES, ids=lambda value: json.dumps(value)[:20])
def test_publish_accepts_any_json_value(client: httpx.Client, data: Any) -> None:
    channel = unique_channel()
    response = client.post(
        f"/channels/{channel}/events", content=json_body(data), headers=JSON_HEADERS
    )
    event_id = check_published(response, channel)
    assert response.headers["content-type"].startswith("application/json")

    history = client.get(f"/channels/{channel}/events").json()
    assert history == {"channel": channel, "events": [{"id": event_id, "data": data}]}


def test_publish_accepts_json_with_charset_and_whitespace(client: httpx.Client) -> None:
    channel = unique_channel()
    response = client.post(
        f"/channels/{channel}/events",
        content=b' \n {"a": [1, 2]} \n',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    event_id = check_published(response, channel)
    events = client.get(f"/channels/{channel}/events").json()["events"]
    assert events == [{"id": event_id, "data": {"a": [1, 2]}}]


def test_ids_strictly_increase_within_a_channel(client: httpx.Client) -> None:
    channel = unique_channel()
    other = unique_channel()
    ids = []
    for number in range(20):
        ids.append(publish(client, channel, number))
        publish(client, other, number)
    keys = [id_key(event_id) for event_id in ids]
    assert all(a < b for a, b in pairwise(keys)), ids


def test_concurrent_publishes_get_distinct_ids_in_history_order(server: Server) -> None:
    channel = unique_channel()

    async def scenario() -> list[str]:
        async with async_client(server) as client:
            return list(await asyncio.gather(*(apublish(client, channel, n) for n in range(50))))

    ids = asyncio.run(scenario())
    assert len(set(ids)) == 50
    with http_client(server) as client:
        events = client.get(f"/channels/{channel}/events").json()["events"]
    assert sorted(event["data"] for event in events) == list(range(50))
    history_ids = [event["id"] for event in events]
    assert sorted(history_ids) == sorted(ids)
    assert [id_key(event_id) for event_id in history_ids] == sorted(map(id_key, ids))


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"not json",
        b"NaN",
        b"[NaN]",
        b'{"x": Infinity}',
        b"-Infinity",
        b"",
        b"{'single': 'quotes'}",
        b"1 2",
        b'{"a": 1,}',
        b"\xff",
        b'"\xff\xfe"',
    ],
)
def test_publish_rejects_a_body_that_is_not_json(client: httpx.Client, body: bytes) -> None:
    channel = unique_channel()
    response = client.post(
        f"/channels/{channel}/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "bad_json")
    assert client.get(f"/channels/{channel}/events").json()["events"] == []


def test_publish_of_a_lone_surrogate_is_a_clean_answer(client: httpx.Client) -> None:
    # JSON's grammar allows "\ud800"; it cannot be encoded as UTF-8. Either refuse it as
    # bad_json or accept it, but never fail with a 500 or break the channel's history.
    channel = unique_channel()
    response = client.post(
        f"/channels/{channel}/events",
        content=b'"\\ud800"',
        headers={"Content-Type": "application/json"},
    )
    if response.status_code == 400:
        assert_error(response, 400, "bad_json")
    else:
        check_published(response, channel)
    history = client.get(f"/channels/{channel}/events")
    assert history.status_code == 200, history.text
    history.json()


def json_string_of_size(size: int) -> bytes:
    """A JSON document (a string) exactly `size` bytes long."""
    return b'"' + b"x" * (size - 2) + b'"'


def test_publish_accepts_a_body_of_exactly_the_limit(client: httpx.Client) -> None:
    channel = unique_channel()
    body = json_string_of_size(MAX_MESSAGE_BYTES)
    response = client.post(
        f"/channels/{channel}/events", content=body, headers={"Content-Type": "application/json"}
    )
    check_published(response, channel)


def test_publish_rejects_a_body_over_the_limit(client: httpx.Client) -> None:
    channel = unique_channel()
    body = json_string_of_size(MAX_MESSAGE_BYTES + 1)
    response = client.post(
        f"/channels/{channel}/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.request.headers["content-length"] == str(MAX_MESSAGE_BYTES + 1)
    assert_error(response, 413, "too_large")
    assert client.get(f"/channels/{channel}/events").json()["events"] == []


def test_publish_counts_bytes_not_characters(client: httpx.Client) -> None:
    channel = unique_channel()
    text = "ü" * (MAX_MESSAGE_BYTES // 2)  # fewer characters than the limit, twice the bytes
    body = json.dumps(text, ensure_ascii=False).encode()
    assert len(text) < MAX_MESSAGE_BYTES < len(body)
    response = client.post(
        f"/channels/{channel}/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "too_large")


def chunks(body: bytes, size: int = 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_publish_rejects_a_chunked_body_over_the_limit(client: httpx.Client) -> None:
    channel = unique_channel()
    body = json_string_of_size(MAX_MESSAGE_BYTES + 4096)
    response = client.post(
        f"/channels/{channel}/events",
        content=chunks(body),
        headers={"Content-Type": "application/json"},
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "too_large")
    assert client.get(f"/channels/{channel}/events").json()["events"] == []


def test_publish_accepts_a_chunked_body_under_the_limit(client: httpx.Client) -> None:
    channel = unique_channel()
    body = json.dumps({"items": list(range(3000))}).encode()
    assert len(body) < MAX_MESSAGE_BYTES
    response = client.post(
        f"/channels/{channel}/events",
        content=chunks(body, 100),
        headers={"Content-Type": "application/json"},
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    event_id = check_published(response, channel)
    events = client.get(f"/channels/{channel}/events").json()["events"]
    assert events == [{"id": event_id, "data": {"items": list(range(3000))}}]


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "text/json",
    ],
)
def test_publish_rejects_other_content_types(
    client: httpx.Client, content_type: str | None
) -> None:
    channel = unique_channel()
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post(f"/channels/{channel}/events", content=b'{"a": 1}', headers=headers)
    assert ("content-type" in response.request.headers) == (content_type is not None)
    assert_error(response, 415, "unsupported_media_type")
    assert client.get(f"/channels/{channel}/events").json()["events"] == []


@pytest.mark.parametrize("channel", BAD_CHANNELS, ids=repr)
def test_publish_rejects_bad_channel_names(client: httpx.Client, channel: str) -> None:
    response = client.post(
        f"/channels/{quote(channel, safe='')}/events", content=b'{"a": 1}', headers=JSON_HEADERS
    )
    assert_error(response, 400, "bad_channel")


@pytest.mark.parametrize("channel", GOOD_CHANNELS, ids=lambda name: name[:20])
def test_publish_accepts_every_good_channel_name(client: httpx.Client, channel: str) -> None:
    event_id = publish(client, channel, "hello")
    events = client.get(f"/channels/{channel}/events").json()
    assert events["channel"] == channel
    assert events["events"][-1] == {"id": event_id, "data": "hello"}
