"""One connection's queue: bounded, woken without a task or timer per event."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable

from .events import Event, Frame


class CloseReason(enum.Enum):
    GONE = "gone"  # the client went away
    SLOW = "slow"  # the client fell more than the buffer behind
    DRAIN = "drain"  # the server is shutting down
    EXPIRED = "expired"  # the token it was opened with has expired
    REFUSED = "refused"  # the client failed to authenticate

    @property
    def says_why(self) -> bool:
        """Whether what was queued still goes out first (a farewell, or why it ends)."""
        return self in (CloseReason.DRAIN, CloseReason.EXPIRED, CloseReason.REFUSED)


class SubscriberClosed(Exception):
    def __init__(self, reason: CloseReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


class Subscriber:
    """The frames waiting for one connection, and the one writer task that takes them.

    The hub appends frames and wakes the writer; the writer takes everything
    queued at once, so a burst costs one write. At most `limit` live events may
    wait; and since a client can make the server queue other frames too
    (replies to its own messages, replayed history), at most `max_queued`
    frames of any kind. Past either, the client is too slow and is cut.
    """

    __slots__ = (
        "_active",
        "_batches",
        "_batches_seen",
        "_buffer",
        "_fences",
        "_heartbeat_due",
        "_limit",
        "_live",
        "_max_queued",
        "_replaying",
        "_stalled",
        "_waiter",
        "_writing",
        "channels",
        "client",
        "close_reason",
        "on_abort",
        "on_cut",
        "protocol",
        "wants_heartbeat",
    )

    def __init__(
        self,
        protocol: str,
        limit: int,
        *,
        wants_heartbeat: bool,
        client: str | None = None,
        max_queued: int | None = None,
    ) -> None:
        self.protocol = protocol
        # The client's address, counted against its own limit of connections.
        self.client = client
        self.channels: set[str] = set()
        self.wants_heartbeat = wants_heartbeat
        self.close_reason: CloseReason | None = None
        # Called when the writer may be stuck in a write to a client that stopped reading.
        self.on_abort: Callable[[], object] | None = None
        # Called once it is cut: drops the client's connection, and what was queued for it.
        self.on_cut: Callable[[], object] | None = None
        self._limit = limit
        self._max_queued = limit if max_queued is None else max_queued
        self._buffer: list[Frame] = []
        self._live = 0
        self._active = False
        self._heartbeat_due = False
        self._waiter: asyncio.Future[None] | None = None
        # Whether the writer holds frames it took and has not finished writing, how
        # many batches it took, and for how many heartbeats in a row it made no progress.
        self._writing = False
        self._batches = 0
        self._batches_seen = 0
        self._stalled = 0
        # Live events that arrive while a channel's history is being read.
        self._replaying: dict[str, list[Event]] = {}
        # After a replay, the key of its last event: a live copy of a replayed event
        # may still be on its way from the broker, and is dropped when it comes.
        self._fences: dict[str, tuple[int, ...]] = {}

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    def push(self, event: Event) -> bool:
        """Queue a live event; False when this made the subscriber a slow consumer."""
        if self.close_reason is not None:
            return True
        if self._fences:
            fence = self._fences.get(event.channel)
            if fence is not None:
                if event.key <= fence:
                    return True
                del self._fences[event.channel]
        if self._live >= self._limit or len(self._buffer) >= self._max_queued:
            self.close(CloseReason.SLOW)
            return False
        self._live += 1
        pending = self._replaying.get(event.channel) if self._replaying else None
        if pending is not None:
            pending.append(event)
        else:
            self._buffer.append(event)
            self._wake()
        return True

    def send(self, frame: Frame) -> bool:
        """Queue a frame that is not a live event: a reply or a reset.

        False when this made the subscriber a slow consumer: a client that keeps
        sending and never reads is cut whatever it sends.
        """
        if self.close_reason is not None:
            return True
        if len(self._buffer) >= self._max_queued:
            self.close(CloseReason.SLOW)
            return False
        self._buffer.append(frame)
        self._wake()
        return True

    def begin_replay(self, channel: str) -> None:
        self._replaying[channel] = []

    def end_replay(self, channel: str, replay: list[Frame], after: tuple[int, ...] | None) -> None:
        """Queue replayed history, then the live events held meanwhile that it did not cover."""
        held = self._replaying.pop(channel, [])
        frames = replay + [event for event in held if after is None or event.key > after]
        if after is not None and channel in self.channels:
            self._fences[channel] = after
        if frames and self.close_reason is None:
            self._buffer.extend(frames)
            self._wake()

    def forget(self, channel: str) -> None:
        """Drop what is kept for a channel this connection no longer listens to."""
        self._replaying.pop(channel, None)
        self._fences.pop(channel, None)

    def heartbeat(self) -> None:
        """Called every heartbeat interval; wakes the writer only if it wrote nothing since."""
        if not self._active and self.close_reason is None:
            self._heartbeat_due = True
            self._wake()
        self._active = False

    def write_stalled(self) -> int:
        """Called every heartbeat: for how many beats in a row one write has not finished.

        A client that stops reading leaves its writer stuck in a write: on a
        server whose writes wait for the client, nothing else would ever
        queue up behind it to show that the client is too slow.
        """
        if self._writing and self._batches == self._batches_seen:
            self._stalled += 1
        else:
            self._stalled = 0
        self._batches_seen = self._batches
        return self._stalled

    def close(self, reason: CloseReason) -> None:
        if self.close_reason is not None:
            return
        self.close_reason = reason
        if not reason.says_why:
            self._buffer.clear()
        self._wake()
        if reason is CloseReason.SLOW:
            if self.on_abort is not None:
                self.on_abort()
            if self.on_cut is not None:
                self.on_cut()

    async def next_frames(self) -> list[Frame]:
        """Wait for frames; an empty list means a heartbeat is due.

        Raises SubscriberClosed once the hub has closed it and, when draining,
        everything queued before has been taken. Called again, it means that
        what it returned before has been written.
        """
        self._writing = False
        while True:
            if self._buffer:
                frames = self._buffer
                self._buffer = []
                self._live = 0
                self._active = True
                self._writing = True
                self._batches += 1
                return frames
            if self.close_reason is not None:
                raise SubscriberClosed(self.close_reason)
            if self._heartbeat_due:
                self._heartbeat_due = False
                self._writing = True
                self._batches += 1
                return []
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
