"""What every answer must be, and readers for the streams that check each frame."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

# The longest any example waits for one thing: a reply, a frame, the end of a stream.
DEADLINE = 10.0

STREAM_TYPES = {"text/event-stream", "application/x-ndjson"}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} overflows: no JSON reader gets a number back")
    return value


def strict_loads(text: str | bytes) -> Any:
    """Parse JSON as any other client would have to: UTF-8, no NaN or Infinity, no
    number that overflows, no lone surrogate. Raises ValueError."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    # A lone surrogate (written as an escape) cannot be written as UTF-8.
    json.dumps(value, ensure_ascii=False).encode("utf-8")
    return value


def valid_json(text: str | bytes, what: str) -> Any:
    try:
        return strict_loads(text)
    except (ValueError, RecursionError) as error:
        raise AssertionError(f"{what} is not valid JSON ({error}): {text[:300]!r}") from None


def media_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.partition(";")[0].strip().lower()


def check_answer(response: httpx.Response, body: bytes) -> None:
    """Any complete answer: no 5xx, no traceback, and an error of the contract's shape."""
    where = f"{response.request.method} {response.request.url}"
    assert response.status_code < 500, f"{where}: {response.status_code} {body[:1000]!r}"
    assert b"Traceback" not in body, f"{where}: a traceback in the response: {body[:3000]!r}"
    if response.request.method == "HEAD":
        assert not body, f"{where}: a body in the answer to HEAD: {body[:300]!r}"
        return
    if response.status_code >= 400 and media_type(response) == "application/json":
        error = valid_json(body, f"{where}: the error body")
        assert isinstance(error, dict), f"{where}: {body[:500]!r}"
        assert isinstance(error.get("error"), str), f"{where}: {body[:500]!r}"
        assert isinstance(error.get("message"), str), f"{where}: {body[:500]!r}"


def id_key(event_id: Any) -> tuple[int, ...]:
    """The order of ids: a decimal integer, or two joined by a dash (Redis)."""
    assert isinstance(event_id, str), event_id
    parts = event_id.split("-")
    assert 1 <= len(parts) <= 2, event_id
    assert all(part.isascii() and part.isdigit() for part in parts), event_id
    return tuple(int(part) for part in parts)


async def within(awaitable: Awaitable[T], what: str, seconds: float = DEADLINE) -> T:
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        raise AssertionError(f"hang: gave up after {seconds} s waiting for {what}") from None


async def lines(response: httpx.Response) -> AsyncIterator[bytes]:
    """Lines of a streamed body, split on LF only."""
    pending = bytearray()
    async for chunk in response.aiter_bytes():
        pending += chunk
        while (end := pending.find(b"\n")) >= 0:
            yield bytes(pending[:end])
            del pending[: end + 1]


async def sse_frames(response: httpx.Response) -> AsyncIterator[list[tuple[str, str]]]:
    """The fields of each SSE frame, comments left out; every line must be UTF-8."""
    fields: list[tuple[str, str]] = []
    async for raw in lines(response):
        try:
            line = raw.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError:
            raise AssertionError(f"an SSE line is not UTF-8: {raw[:300]!r}") from None
        if not line:
            if fields:
                yield fields
                fields = []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields.append((name, value.removeprefix(" ")))


def sse_frame(fields: list[tuple[str, str]], channel: str) -> tuple[str, Any] | None:
    """Check one SSE frame: an event (id, data) is returned; retry and reset frames, None."""
    names = [name for name, _ in fields]
    values = dict(fields)
    assert len(set(names)) == len(names), f"a field repeats in an SSE frame: {fields}"
    if names == ["retry"]:
        assert values["retry"].isascii(), fields
        assert values["retry"].isdigit(), fields
        return None
    if names == ["event", "data"] and values["event"] == "reset":
        assert valid_json(values["data"], "a reset frame's data") == {"channel": channel}, fields
        return None
    assert names == ["id", "data"], f"unexpected SSE frame: {fields}"
    id_key(values["id"])
    return values["id"], valid_json(values["data"], "an SSE event's data")


def ndjson_line(line: bytes, channel: str) -> tuple[str, Any] | None:
    """Check one NDJSON line: an event (id, data) is returned; heartbeats and resets, None."""
    if not line:
        return None
    value = valid_json(line, "an NDJSON line")
    assert isinstance(value, dict), line[:300]
    if value.get("op") == "reset":
        assert value == {"op": "reset", "channel": channel}, value
        return None
    assert set(value) == {"channel", "id", "data"}, value
    assert value["channel"] == channel, value
    id_key(value["id"])
    return value["id"], value["data"]


async def stream_events(
    response: httpx.Response, protocol: str, channel: str
) -> AsyncIterator[tuple[str, Any]]:
    """The events of an SSE or NDJSON stream, each frame checked on the way."""
    if protocol == "sse":
        async for fields in sse_frames(response):
            if (event := sse_frame(fields, channel)) is not None:
                yield event
    else:
        async for line in lines(response):
            if (event := ndjson_line(line, channel)) is not None:
                yield event
