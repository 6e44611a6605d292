"""What the hub needs from a broker, whichever engine is behind it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from ..events import Event

logger = logging.getLogger(__name__)

# Reconnect delays: the first retry comes soon, later ones back off to this cap.
FIRST_RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 5.0


class BrokerUnavailable(Exception):
    """The broker cannot be reached; the request may be retried later.

    Adapters answer it with 503 `{"error": "broker_unavailable", "message": str(error)}`
    (HTTP) or an `error` reply with that code (WebSocket).
    """

    code = "broker_unavailable"

    def __init__(self, message: str = "the message broker is unreachable; retry shortly") -> None:
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class History:
    """Events read back from a channel's history.

    `exact` is False when the events asked for are no longer all there (the
    id is older than the history kept, or comes from before a restart): the
    client must be told to reset, and `events` is then everything still kept.
    """

    events: list[Event]
    exact: bool


@dataclass(frozen=True, slots=True)
class HistoryLimits:
    """How much history a broker keeps, so that no client can make it keep more.

    `size` events per channel; `max_bytes` of event data in all (the in-memory
    broker per process, NATS per stream); at most `channels` channels (in
    memory and PostgreSQL); and a channel nobody has published to for
    `idle_seconds` loses its history (NATS: each message that old). Redis has
    no byte or key cap of its own kind: its `maxmemory` bounds it.
    docs/limits.md and docs/limits-brokers.md give each engine's worst case.
    """

    size: int
    max_bytes: int
    channels: int
    idle_seconds: float


class BrokerEvents(Protocol):
    """What a broker tells the hub that started it."""

    def deliver(self, event: Event) -> None:
        """An event published anywhere; per channel, in id order."""

    def broker_up(self) -> None:
        """Live delivery runs (again): events missed while it did not are in history."""

    def broker_down(self) -> None:
        """The connection is lost: live events stop until `broker_up`."""


class Broker(Protocol):
    """Fans events out to every process and keeps each channel's recent history.

    One broker per process, and one subscription to the engine per process:
    the broker calls `deliver` once for every event published anywhere, and
    the hub fans it out locally.
    """

    @property
    def is_up(self) -> bool: ...

    async def start(self, events: BrokerEvents) -> None:
        """Connect; if the engine cannot be reached, keep trying in the background."""
        ...

    async def close(self) -> None: ...

    async def publish(self, channel: str, data: str) -> Event:
        """Store the event (its id assigned), fan it out, and return it.

        Raises BrokerUnavailable when the engine cannot take it.
        """
        ...

    async def history(self, channel: str, after: str | None, limit: int) -> History:
        """Up to `limit` events after `after`, oldest first; without `after`, the newest.

        Raises BrokerUnavailable when the engine cannot be read.
        """
        ...

    def parse_id(self, value: str) -> tuple[int, ...]:
        """The ordering key of an id this broker could have made; ValueError if it could not."""
        ...


def display_url(url: str) -> str:
    """The URL without credentials, fit for a log line."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class ConnectedBroker:
    """The life of a broker on a network engine: connect, listen, and reconnect after a loss.

    Subclasses open their connections in `connect` (subscribed to live events
    when it returns), read live events in `listen` until the connection fails,
    and drop whatever is left in `disconnect`. Start-up never fails because
    the engine is away: it logs why and keeps trying, and `is_up` (so
    /readyz) stays false until it connects.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._events: BrokerEvents | None = None
        self._up = False
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def is_up(self) -> bool:
        return self._up

    @property
    def events(self) -> BrokerEvents:
        if self._events is None:
            raise RuntimeError("the broker is not started")
        return self._events

    async def start(self, events: BrokerEvents) -> None:
        self._events = events
        first_attempt = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.create_task(self._run(first_attempt), name="realtime-broker")
        await first_attempt

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        self._up = False
        await self.disconnect()

    def check_up(self) -> None:
        """Fail fast, rather than wait on a connection known to be down."""
        if not self._up:
            raise BrokerUnavailable()

    async def connect(self) -> None:
        raise NotImplementedError

    async def listen(self) -> None:
        raise NotImplementedError

    async def disconnect(self) -> None:
        raise NotImplementedError

    async def _run(self, first_attempt: asyncio.Future[None]) -> None:
        delay = FIRST_RETRY_SECONDS
        where = display_url(self.url)
        while True:
            try:
                await self.connect()
            except Exception as error:
                logger.warning(
                    "waiting for the broker at %s (%s); retrying in %.1f s",
                    where,
                    describe(error),
                    delay,
                )
                await self._quietly_disconnect()
                if not first_attempt.done():
                    first_attempt.set_result(None)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            logger.info("connected to the broker at %s", where)
            self._up = True
            delay = FIRST_RETRY_SECONDS
            self.events.broker_up()
            if not first_attempt.done():
                first_attempt.set_result(None)
            try:
                await self.listen()
                error_text = "the connection closed"
            except Exception as error:
                error_text = describe(error)
            finally:
                self._up = False
            logger.warning("lost the broker at %s (%s); reconnecting", where, error_text)
            self.events.broker_down()
            await self._quietly_disconnect()

    async def _quietly_disconnect(self) -> None:
        try:
            await self.disconnect()
        except Exception as error:
            logger.debug("closing broker connections: %s", describe(error))


def describe(error: BaseException) -> str:
    """One line for a log: the error's type and its first line."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
