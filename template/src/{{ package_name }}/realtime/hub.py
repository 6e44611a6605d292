"""Local fan-out: which connection listens to which channel, heartbeats and drain.

The broker hands every event to `Hub.deliver` once per process; the hub puts
the same event object in each subscriber's queue. Nothing here is per event
per client beyond one append and one wake-up.

When the broker's connection comes back after a loss, the hub reads each
channel's history from the last event it delivered there, so that open
streams get what was published meanwhile: no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import Literal

from .brokers import Broker, BrokerUnavailable, History
from .connection import drop_connection
from .events import Event, Frame, Reset
from .limits import ClientConnections, ConnectionLimits, PublishRate
from .logs import RateLimitedLog
from .metrics import Metrics
from .subscriber import CloseReason, Subscriber

# What /readyz says: `ready` is answered 200, the others 503.
Readiness = Literal["ready", "draining", "broker_down"]

logger = logging.getLogger(__name__)
# A client can make itself a slow consumer as often as it likes: one line per interval.
log_slow_consumer = RateLimitedLog(logger, logging.WARNING)

# On shutdown, how long to wait for the broker to hand back events this process
# published, so that its own subscribers get them before their streams end.
SETTLE_SECONDS = 1.0


class _Channel:
    """A channel with local subscribers, and where its live events have got to."""

    __slots__ = ("held", "last_id", "last_key", "listeners", "published_key")

    def __init__(self) -> None:
        self.listeners: set[Subscriber] = set()
        # The newest event delivered here: where to catch up from after a reconnect.
        self.last_key: tuple[int, ...] | None = None
        self.last_id: str | None = None
        # Live events held back while history is read after a reconnect.
        self.held: list[Event] | None = None
        # The newest event published through this process, on its way back from the broker.
        self.published_key: tuple[int, ...] | None = None

    @property
    def settled(self) -> bool:
        return self.published_key is None or (
            self.last_key is not None and self.last_key >= self.published_key
        )


class Hub:
    def __init__(
        self,
        broker: Broker,
        metrics: Metrics,
        *,
        buffer_size: int,
        history_size: int,
        heartbeat_seconds: float,
        write_timeout_seconds: float = 30.0,
        limits: ConnectionLimits | None = None,
    ) -> None:
        self.broker = broker
        self.metrics = metrics
        self.buffer_size = buffer_size
        self.history_size = history_size
        self.heartbeat_seconds = heartbeat_seconds
        # A write that has not finished after this many heartbeats cuts its client.
        self.stalled_beats = max(1, math.ceil(write_timeout_seconds / heartbeat_seconds))
        self.limits = limits or ConnectionLimits()
        self.clients = ClientConnections()
        self.publish_rate = PublishRate(self.limits.publish_rate, self.limits.publish_burst)
        self.draining = False
        self._channels: dict[str, _Channel] = {}
        self._connections: set[Subscriber] = set()
        self._no_connections = asyncio.Event()
        self._no_connections.set()
        self._heartbeats: asyncio.Task[None] | None = None
        self._catching_up: asyncio.Task[None] | None = None

    @property
    def readiness(self) -> Readiness:
        if self.draining:
            return "draining"
        return "ready" if self.broker.is_up else "broker_down"

    async def start(self) -> None:
        self.metrics.broker_up.set(0)
        await self.broker.start(self)
        self._heartbeats = asyncio.create_task(self._beat(), name="realtime-heartbeats")

    async def close(self) -> None:
        for task in (self._heartbeats, self._catching_up):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for subscriber in list(self._connections):
            self.disconnect(subscriber)
        await self.broker.close()
        self.metrics.broker_up.set(0)

    # Connections

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def connect(
        self, protocol: str, *, wants_heartbeat: bool, client: str | None = None
    ) -> Subscriber:
        """A new connection; `client` is its address, counted against its own limit."""
        subscriber = Subscriber(
            protocol,
            self.buffer_size,
            wants_heartbeat=wants_heartbeat,
            client=client,
            max_queued=self.buffer_size + self.history_size,
        )
        subscriber.on_cut = drop_connection.get()
        self.clients.opened(client)
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
            self.clients.closed(subscriber.client)
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
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel()
        state.listeners.add(subscriber)
        self.metrics.subscribers.inc()
        if last_event_id is None:
            return
        subscriber.begin_replay(channel)
        try:
            history = await self._history_since(channel, last_event_id)
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

    async def _history_since(self, channel: str, last_event_id: str) -> History:
        """What a client missed after the last id it saw.

        An id this broker could not have made (garbage, or one from another broker
        after a switch) cannot be resumed from either: the client is reset.
        """
        try:
            self.broker.parse_id(last_event_id)
        except ValueError:
            kept = await self.broker.history(channel, None, self.history_size)
            return History(kept.events, exact=False)
        return await self.broker.history(channel, last_event_id, self.history_size)

    def unsubscribe(self, subscriber: Subscriber, channel: str) -> None:
        if channel not in subscriber.channels:
            return
        subscriber.channels.discard(channel)
        subscriber.forget(channel)
        state = self._channels.get(channel)
        if state is not None:
            state.listeners.discard(subscriber)
            if not state.listeners:
                del self._channels[channel]
        self.metrics.subscribers.dec()

    # Events

    async def publish(self, channel: str, data: str) -> Event:
        """Publish compact JSON text; the broker assigns the id and fans it out."""
        event = await self.broker.publish(channel, data)
        self.metrics.published.inc()
        state = self._channels.get(channel)
        if state is not None and (state.published_key is None or event.key > state.published_key):
            state.published_key = event.key
        return event

    async def history(self, channel: str, after: str | None, limit: int) -> History:
        return await self.broker.history(channel, after, limit)

    def parse_id(self, value: str) -> tuple[int, ...]:
        return self.broker.parse_id(value)

    def deliver(self, event: Event) -> None:
        """Queue one event for every local subscriber of its channel."""
        state = self._channels.get(event.channel)
        if state is None:
            return
        if state.held is not None:
            state.held.append(event)
        else:
            self._fan_out(state, event)

    def _fan_out(self, state: _Channel, event: Event) -> None:
        if state.last_key is not None and event.key <= state.last_key:
            return  # a live copy of an event already caught up from history
        state.last_key = event.key
        state.last_id = event.id
        for subscriber in state.listeners:
            if not subscriber.push(event):
                self.cut_slow_consumer(subscriber)

    def cut_slow_consumer(self, subscriber: Subscriber) -> None:
        """Count and log a subscriber that the queue limits have just closed."""
        self.metrics.slow_consumer_disconnects.inc()
        log_slow_consumer(
            "closed a slow %s consumer: more than %d events, or %d frames, waiting, "
            "or a write stuck for %.0f s",
            subscriber.protocol,
            self.buffer_size,
            self.buffer_size + self.history_size,
            self.stalled_beats * self.heartbeat_seconds,
        )

    # The broker's connection

    def broker_up(self) -> None:
        """Live delivery runs again: hold live events while each channel catches up."""
        self.metrics.broker_up.set(1)
        for state in self._channels.values():
            if state.last_id is not None and state.held is None:
                state.held = []
        if any(state.held is not None for state in self._channels.values()):
            self._catching_up = asyncio.create_task(self._catch_up(), name="realtime-catch-up")

    def broker_down(self) -> None:
        self.metrics.broker_up.set(0)
        if self._catching_up is not None:
            # What it had not done is done on the next broker_up.
            self._catching_up.cancel()
            self._catching_up = None

    async def _catch_up(self) -> None:
        caught_up = 0
        for channel, state in list(self._channels.items()):
            if state.held is None or self._channels.get(channel) is not state:
                continue
            try:
                await self._catch_up_channel(channel, state)
            except BrokerUnavailable:
                return  # lost again; the next broker_up starts over
            caught_up += 1
        logger.info("caught up %d channels from history after the broker came back", caught_up)

    async def _catch_up_channel(self, channel: str, state: _Channel) -> None:
        """Deliver what this channel missed, then the live events held meanwhile."""
        while state.last_id is not None:
            found = await self.broker.history(channel, state.last_id, self.history_size)
            if not found.exact:
                logger.warning("events on a channel were lost while the broker was away")
                for subscriber in list(state.listeners):
                    if not subscriber.send(Reset(channel)):
                        self.cut_slow_consumer(subscriber)
                state.last_key = state.last_id = None
            for event in found.events:
                self._fan_out(state, event)
            if not found.exact or len(found.events) < self.history_size:
                break
        held, state.held = state.held or [], None
        for event in held:
            self._fan_out(state, event)

    # Shutdown

    def begin_drain(self) -> None:
        """Turn readiness off and ask every open stream to end cleanly."""
        self.draining = True
        for subscriber in self._connections:
            subscriber.close(CloseReason.DRAIN)

    async def drain(self, seconds: float) -> bool:
        """Drain and wait for the streams to end; False if some were still open after `seconds`."""
        self.draining = True
        await self._settle(min(seconds, SETTLE_SECONDS))
        self.begin_drain()
        try:
            async with asyncio.timeout(seconds):
                await self._no_connections.wait()
        except TimeoutError:
            logger.warning("%d connections still open after draining", len(self._connections))
            return False
        return True

    async def _settle(self, seconds: float) -> None:
        """Wait, up to `seconds`, until this process's subscribers have what it published."""
        deadline = asyncio.get_running_loop().time() + seconds
        while not all(state.settled for state in self._channels.values()):
            if asyncio.get_running_loop().time() >= deadline or not self.broker.is_up:
                return
            await asyncio.sleep(0.01)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            stalled: list[Subscriber] = []
            for subscriber in self._connections:
                if subscriber.wants_heartbeat:
                    subscriber.heartbeat()
                if subscriber.write_stalled() >= self.stalled_beats and not subscriber.closed:
                    stalled.append(subscriber)
            # Closing one may end its connection at once: not while iterating them all.
            for subscriber in stalled:
                subscriber.close(CloseReason.SLOW)
                self.cut_slow_consumer(subscriber)
