"""What the contract refuses, and how it says so: written once for every framework.

Adapters read the request their framework's way and hand the raw values here;
each check returns the clean value or raises `APIError`, which an adapter turns
into its framework's JSON response.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any

from .events import Event, dump_json, is_valid_channel, parse_json
from .hub import Hub

DEFAULT_HISTORY_LIMIT = 100
CHANNEL_RULE = "channel names match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


class APIError(Exception):
    """A request the contract refuses; answered as JSON `{"error", "message"}`."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message}


def routing_error(status: int, message: str, allow: str | None = None) -> APIError:
    """A framework's own 404 or 405, in the contract's shape."""
    headers = {"Allow": allow} if allow else None
    return APIError(status, HTTP_ERROR_CODES.get(status, "http_error"), message, headers)


def broker_error(code: str, message: str) -> APIError:
    """The broker is away: publish, history and resume wait until it is back."""
    return APIError(503, code, message, {"Retry-After": "1"})


def checked_channel(channel: str) -> str:
    if not is_valid_channel(channel):
        raise APIError(400, "bad_channel", CHANNEL_RULE)
    return channel


def checked_id(hub: Hub, value: str | None, name: str) -> str | None:
    if value is not None:
        try:
            hub.parse_id(value)
        except ValueError:
            raise APIError(400, "bad_last_event_id", f"{name} is not an event id") from None
    return value


def checked_limit(hub: Hub, raw: str | None) -> int:
    most = hub.history_size
    if raw is None:
        return min(DEFAULT_HISTORY_LIMIT, most)
    # isdigit() alone also takes digits such as "¹" or full-width ones, which int() refuses
    # or reads: only ASCII digits are a number here.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= most:
        raise APIError(400, "bad_limit", f"limit must be a whole number from 1 to {most}")
    return int(raw)


def draining_error() -> APIError:
    return APIError(503, "draining", "the server is shutting down; reconnect shortly")


def connection_refusal(hub: Hub, client: str | None) -> APIError | None:
    """Why a new stream or socket may not open now, if it may not."""
    if hub.draining:
        return draining_error()
    limits = hub.limits
    if hub.connection_count >= limits.max_connections:
        return APIError(
            503,
            "too_many_connections",
            f"this server holds its limit of {limits.max_connections} connections; retry shortly",
            {"Retry-After": "5"},
        )
    if hub.clients.count(client) >= limits.max_client_connections:
        return APIError(
            429,
            "too_many_connections",
            f"at most {limits.max_client_connections} connections may be open from one address",
            {"Retry-After": "5"},
        )
    return None


def check_publish_rate(hub: Hub, client: str | None) -> None:
    """Refuse a publish over the client address's rate, saying when to try again."""
    wait = hub.publish_rate.wait(client)
    if wait:
        raise APIError(
            429,
            "rate_limited",
            f"at most {hub.limits.publish_rate:g} publishes a second from one address",
            {"Retry-After": str(wait)},
        )


def check_json_content_type(content_type: str | None) -> None:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise APIError(415, "unsupported_media_type", "the body must be application/json")


def too_large(limit: int) -> APIError:
    # The rest of the body is left unread, so the connection cannot carry another request.
    return APIError(
        413, "too_large", f"the body must be at most {limit} bytes", {"Connection": "close"}
    )


def body_timeout(timeout: float) -> APIError:
    # The rest of the body may still come: the connection cannot carry another request.
    return APIError(
        408,
        "body_timeout",
        f"the body must arrive within {timeout:g} seconds",
        {"Connection": "close"},
    )


def declares_too_much(content_length: str | None, limit: int) -> bool:
    return content_length is not None and content_length.isdigit() and int(content_length) > limit


def parsed_body(body: bytes, limit: int) -> str:
    """The body as compact JSON text."""
    if len(body) > limit:
        raise too_large(limit)
    try:
        return dump_json(parse_json(body))
    except ValueError:
        raise APIError(400, "bad_json", "the body is not valid JSON") from None


async def read_json_body(
    content_type: str | None,
    content_length: str | None,
    chunks: AsyncIterable[bytes],
    limit: int,
    time_limit: float,
) -> str:
    """A publish body as compact JSON text, read no further than `limit` bytes.

    Reads in chunks and stops early, since a chunked body declares no length.
    A body that takes longer than `time_limit` seconds is refused: some servers
    give a slow body no deadline of their own.
    """
    check_json_content_type(content_type)
    if declares_too_much(content_length, limit):
        raise too_large(limit)
    body = bytearray()
    try:
        async with asyncio.timeout(time_limit):
            async for chunk in chunks:
                body += chunk
                if len(body) > limit:
                    break
    except TimeoutError:
        raise body_timeout(time_limit) from None
    return parsed_body(bytes(body), limit)


def history_body(channel: str, events: Iterable[Event]) -> str:
    """The history answer, built from each event's JSON as it is kept (data is not re-parsed)."""
    entries = ",".join(event.history_entry() for event in events)
    return '{"channel":' + dump_json(channel) + ',"events":[' + entries + "]}"
