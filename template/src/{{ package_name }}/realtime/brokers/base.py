"""What the hub needs from a broker, whichever engine is behind it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..events import Event

Deliver = Callable[[Event], None]


class BrokerUnavailable(Exception):
    """The broker cannot be reached; the request may be retried later."""


@dataclass(frozen=True, slots=True)
class History:
    """Events read back from a channel's history.

    `exact` is False when the events asked for are no longer all there (the
    id is older than the history kept, or comes from before a restart): the
    client must be told to reset, and `events` is then everything still kept.
    """

    events: list[Event]
    exact: bool


class Broker(Protocol):
    """Fans events out to every process and keeps each channel's recent history.

    One broker per process, and one subscription to the engine per process:
    the broker calls `deliver` once for every event published anywhere, and
    the hub fans it out locally.
    """

    @property
    def is_up(self) -> bool: ...

    async def start(self, deliver: Deliver) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, channel: str, data: str) -> Event:
        """Store the event (its id assigned), fan it out, and return it."""
        ...

    async def history(self, channel: str, after: str | None, limit: int) -> History:
        """Up to `limit` events after `after`, oldest first; without `after`, the newest."""
        ...

    def parse_id(self, value: str) -> tuple[int, ...]:
        """The ordering key of an id this broker could have made; ValueError if it could not."""
        ...
