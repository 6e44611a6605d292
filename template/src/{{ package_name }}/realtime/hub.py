"""Local fan-out: which connection listens to which channel, heartbeats and drain.

The broker hands every event to `Hub.deliver` once per process; the hub puts
the same event object in each subscriber's queue. Nothing here is per event
per client beyond one append and one wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .brokers import Broker, History
from .events import Event, Frame, Reset
from .metrics import Metrics
from .subscriber import CloseReason, Subscriber

logger = logging.getLogger(__name__)


class Hub:
    def __init__(
        self,
        broker: Broker,
        metrics: Metrics,
        *,
        buffer_size: int,
        history_size: int,
        heartbeat_seconds: float,
    ) -> None:
        self.broker = broker
        self.metrics = metrics
        self.buffer_size = buffer_size
        self.history_size = history_size
        self.heartbeat_seconds = heartbeat_seconds
        self.draining = False
        self._channels: dict[str, set[Subscriber]] = {}
        self._connections: set[Subscriber] = set()
        self._no_connections = asyncio.Event()
        self._no_connections.set()
        self._heartbeats: asyncio.Task[None] | None = None

    @property
    def is_ready(self) -> bool:
        return self.broker.is_up and not self.draining

    async def start(self) -> None:
        await self.broker.start(self.deliver)
        self.metrics.broker_up.set(1 if self.broker.is_up else 0)
        self._heartbeats = asyncio.create_task(self._beat(), name="realtime-heartbeats")

    async def close(self) -> None:
        if self._heartbeats is not None:
            self._heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeats
        for subscriber in list(self._connections):
            self.disconnect(subscriber)
        await self.broker.close()
        self.metrics.broker_up.set(0)

    # Connections

    def connect(self, protocol: str, *, wants_heartbeat: bool) -> Subscriber:
        subscriber = Subscriber(protocol, self.buffer_size, wants_heartbeat=wants_heartbeat)
        self._connections.add(subscriber)
        self._no_connections.clear()
        self.metrics.connections.labels(protocol).inc()
        return subscriber

    def disconnect(self, subscriber: Subscriber) -> None:
        """Forget a connection at once; safe to call more than once."""
        subscriber.close(CloseReason.GONE)
        for channel in list(subscriber.channels):
            self.unsubscribe(subscriber, channel)
        if subscriber in self._connections:
            self._connections.remove(subscriber)
            self.metrics.connections.labels(subscriber.protocol).dec()
            if not self._connections:
                self._no_connections.set()

    async def subscribe(
        self, subscriber: Subscriber, channel: str, last_event_id: str | None
    ) -> None:
        """Start live delivery, then replay what the client missed after `last_event_id`.

        Live events that arrive while history is read are held back and sent
        after it, less those the history already had: no gap, no duplicate.
        """
        if channel in subscriber.channels:
            return
        subscriber.channels.add(channel)
        self._channels.setdefault(channel, set()).add(subscriber)
        self.metrics.subscribers.inc()
        if last_event_id is None:
            return
        subscriber.begin_replay(channel)
        try:
            history = await self.broker.history(channel, last_event_id, self.history_size)
        except BaseException:
            subscriber.end_replay(channel, [], None)
            self.unsubscribe(subscriber, channel)
            raise
        replay: list[Frame] = list(history.events)
        if history.events:
            after: tuple[int, ...] | None = history.events[-1].key
        else:
            after = self.broker.parse_id(last_event_id) if history.exact else None
        if not history.exact:
            replay.insert(0, Reset(channel))
        subscriber.end_replay(channel, replay, after)

    def unsubscribe(self, subscriber: Subscriber, channel: str) -> None:
        if channel not in subscriber.channels:
            return
        subscriber.channels.discard(channel)
        listeners = self._channels.get(channel)
        if listeners is not None:
            listeners.discard(subscriber)
            if not listeners:
                del self._channels[channel]
        self.metrics.subscribers.dec()

    # Events

    async def publish(self, channel: str, data: str) -> Event:
        """Publish compact JSON text; the broker assigns the id and fans it out."""
        event = await self.broker.publish(channel, data)
        self.metrics.published.inc()
        return event

    async def history(self, channel: str, after: str | None, limit: int) -> History:
        return await self.broker.history(channel, after, limit)

    def parse_id(self, value: str) -> tuple[int, ...]:
        return self.broker.parse_id(value)

    def deliver(self, event: Event) -> None:
        """Queue one event for every local subscriber of its channel."""
        listeners = self._channels.get(event.channel)
        if not listeners:
            return
        for subscriber in listeners:
            if not subscriber.push(event):
                self.metrics.slow_consumer_disconnects.inc()
                logger.warning(
                    "closed a slow %s consumer: more than %d events behind",
                    subscriber.protocol,
                    self.buffer_size,
                )

    # Shutdown

    def begin_drain(self) -> None:
        """Turn readiness off and ask every open stream to end cleanly."""
        self.draining = True
        for subscriber in self._connections:
            subscriber.close(CloseReason.DRAIN)

    async def drain(self, seconds: float) -> bool:
        """Drain and wait for the streams to end; False if some were still open after `seconds`."""
        self.begin_drain()
        try:
            async with asyncio.timeout(seconds):
                await self._no_connections.wait()
        except TimeoutError:
            logger.warning("%d connections still open after draining", len(self._connections))
            return False
        return True

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            for subscriber in self._connections:
                if subscriber.wants_heartbeat:
                    subscriber.heartbeat()
