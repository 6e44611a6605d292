"""Events and the other frames a connection receives, each encoded once per wire format.

An event fans out to many subscribers: its SSE, NDJSON and WebSocket forms are
built the first time a subscriber of that protocol needs them, and every other
subscriber writes the same object. Never one JSON encode per client.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

CHANNEL_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


def is_valid_channel(name: str) -> bool:
    return CHANNEL_PATTERN.fullmatch(name) is not None


# Deeper JSON is refused: nothing real-time needs it, and a parser (ours or a
# client's) that recurses per level can be made to fail by it.
MAX_JSON_DEPTH = 64


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"{text} is too large for a JSON number that others can read")
    return value


def parse_json(text: str | bytes) -> Any:
    """Parse strict JSON that every wire format and every client can carry.

    JSON between systems is UTF-8. Python's json module accepts NaN and
    Infinity, reads `1e999` as infinity (which it then writes as `Infinity`),
    and accepts a lone surrogate such as "\\ud800", which no UTF-8 stream can
    hold: all are refused here, once, rather than breaking every subscriber's
    stream later. So is nesting deeper than MAX_JSON_DEPTH. Raises ValueError.
    """
    if isinstance(text, bytes):
        text = text.decode()
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    # Counting brackets is cheap and bounds the depth: most texts need no walk.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    if "\\ud" in text or "\\uD" in text:
        try:
            dump_json(value).encode()
        except UnicodeEncodeError:
            raise ValueError("a lone surrogate is not valid JSON text") from None
    return value


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed value; walked without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        pending.extend((child, depth + 1) for child in item)
    return deepest


def dump_json(value: Any) -> str:
    """Compact JSON on one line, as every wire format needs."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Frame:
    """Something queued for a connection; subclasses give it its wire forms."""

    __slots__ = ()

    @property
    def sse(self) -> bytes:
        raise NotImplementedError

    @property
    def ndjson(self) -> bytes:
        raise NotImplementedError

    @property
    def ws(self) -> str:
        raise NotImplementedError


class Event(Frame):
    """One published event. `data` is its JSON text, already compact and on one line."""

    __slots__ = ("_ndjson", "_sse", "_ws", "channel", "data", "id", "key")

    def __init__(self, channel: str, id: str, key: tuple[int, ...], data: str) -> None:
        self.channel = channel
        self.id = id
        # How the broker orders ids; ids themselves stay opaque strings.
        self.key = key
        self.data = data
        self._sse: bytes | None = None
        self._ndjson: bytes | None = None
        self._ws: str | None = None

    def __repr__(self) -> str:
        return f"Event(channel={self.channel!r}, id={self.id!r})"

    @property
    def sse(self) -> bytes:
        if self._sse is None:
            self._sse = f"id: {self.id}\ndata: {self.data}\n\n".encode()
        return self._sse

    @property
    def ndjson(self) -> bytes:
        if self._ndjson is None:
            head = dump_json({"channel": self.channel, "id": self.id})
            self._ndjson = f'{head[:-1]},"data":{self.data}}}\n'.encode()
        return self._ndjson

    @property
    def ws(self) -> str:
        if self._ws is None:
            head = dump_json({"op": "event", "channel": self.channel, "id": self.id})
            self._ws = f'{head[:-1]},"data":{self.data}}}'
        return self._ws

    def history_entry(self) -> str:
        """The event as an item of the history endpoint's JSON list."""
        return f'{{"id":{dump_json(self.id)},"data":{self.data}}}'


class Reset(Frame):
    """Tells a client that its resume point is gone and what follows starts over."""

    __slots__ = ("channel",)

    def __init__(self, channel: str) -> None:
        self.channel = channel

    @property
    def sse(self) -> bytes:
        return f"event: reset\ndata: {dump_json({'channel': self.channel})}\n\n".encode()

    @property
    def ndjson(self) -> bytes:
        return (dump_json({"op": "reset", "channel": self.channel}) + "\n").encode()

    @property
    def ws(self) -> str:
        return dump_json({"op": "reset", "channel": self.channel})
