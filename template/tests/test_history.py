"""GET /channels/{channel}/events: the history kept, oldest first, with ?after= and ?limit=."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from .conftest import Server, StartServer
from .helpers import BAD_CHANNELS, assert_error, http_client, publish, unique_channel

HISTORY_SIZE = 1000  # the contract's default; the `server` fixture does not change it


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with http_client(server) as client:
        yield client


def history(client: httpx.Client, channel: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(f"/channels/{channel}/events", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"channel", "events"}, body
    assert body["channel"] == channel
    events = body["events"]
    assert isinstance(events, list)
    for event in events:
        assert set(event) == {"id", "data"}, event
    return events


def test_history_of_an_unknown_channel_is_empty(client: httpx.Client) -> None:
    assert history(client, unique_channel()) == []


def test_history_returns_published_events_in_order(client: httpx.Client) -> None:
    channel = unique_channel()
    ids = [publish(client, channel, {"n": n}) for n in range(5)]
    assert history(client, channel) == [{"id": i, "data": {"n": n}} for n, i in enumerate(ids)]


def test_history_is_per_channel(client: httpx.Client) -> None:
    first, second = unique_channel(), unique_channel()
    a = publish(client, first, "a")
    b = publish(client, second, "b")
    assert history(client, first) == [{"id": a, "data": "a"}]
    assert history(client, second) == [{"id": b, "data": "b"}]


def test_after_returns_the_events_after_an_id(client: httpx.Client) -> None:
    channel = unique_channel()
    ids = [publish(client, channel, n) for n in range(6)]
    assert [e["id"] for e in history(client, channel, after=ids[1])] == ids[2:]
    assert [e["id"] for e in history(client, channel, after=ids[1], limit="2")] == ids[2:4]
    assert history(client, channel, after=ids[-1]) == []


def test_limit_without_after_returns_the_newest(client: httpx.Client) -> None:
    channel = unique_channel()
    ids = [publish(client, channel, n) for n in range(6)]
    assert [e["id"] for e in history(client, channel, limit="2")] == ids[-2:]
    assert [e["id"] for e in history(client, channel, limit="1")] == ids[-1:]
    assert [e["id"] for e in history(client, channel, limit=str(HISTORY_SIZE))] == ids


def test_limit_defaults_to_100(client: httpx.Client) -> None:
    channel = unique_channel()
    ids = [publish(client, channel, n) for n in range(101)]
    events = history(client, channel)
    assert [e["id"] for e in events] == ids[1:]
    assert [e["data"] for e in events] == list(range(1, 101))
    assert [e["id"] for e in history(client, channel, after=ids[0])] == ids[1:]
    assert len(history(client, channel, after=ids[0], limit="100")) == 100


@pytest.mark.parametrize("limit", ["0", "-1", "x", "1.5", "1e2", str(HISTORY_SIZE + 1), "0x10"])
def test_bad_limit(client: httpx.Client, limit: str) -> None:
    channel = unique_channel()
    publish(client, channel, 1)
    response = client.get(f"/channels/{channel}/events", params={"limit": limit})
    assert_error(response, 400, "bad_limit")


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "12abc", "١٢٣", "9" * 40, " 1"])
def test_bad_after(client: httpx.Client, after: str) -> None:
    channel = unique_channel()
    publish(client, channel, 1)
    response = client.get(f"/channels/{channel}/events", params={"after": after})
    assert_error(response, 400, "bad_last_event_id")


@pytest.mark.parametrize("channel", BAD_CHANNELS, ids=repr)
def test_history_rejects_bad_channel_names(client: httpx.Client, channel: str) -> None:
    assert_error(client.get(f"/channels/{quote(channel, safe='')}/events"), 400, "bad_channel")


def test_history_is_capped_at_history_size(start_server: StartServer) -> None:
    server = start_server(history_size="5")
    channel = unique_channel()
    with http_client(server) as client:
        ids = [publish(client, channel, n) for n in range(8)]
        assert history(client, channel) == [{"id": i, "data": n + 3} for n, i in enumerate(ids[3:])]
        assert [e["id"] for e in history(client, channel, limit="5")] == ids[3:]
        assert [e["id"] for e in history(client, channel, after=ids[5])] == ids[6:]
        assert_error(
            client.get(f"/channels/{channel}/events", params={"limit": "6"}), 400, "bad_limit"
        )
