"""What one client address may hold or do: open connections and a publish rate.

Counted per address as the server reports it (behind a trusted proxy, the
forwarded one). Both tables are bounded: an address with nothing open is
forgotten at once, and the rate table keeps the most recently seen addresses.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass

# Addresses whose publish rate is remembered; the least recently seen goes first.
MAX_RATED_CLIENTS = 65_536


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Limits on long-lived connections and publishing; docs/limits.md."""

    # Open streams and sockets in this process.
    max_connections: int = 10_000
    # Open streams and sockets from one client address.
    max_client_connections: int = 100
    # Publishes per second from one client address, and how many may come at once; 0: no limit.
    publish_rate: float = 50.0
    publish_burst: int = 100


class ClientConnections:
    """Open connections per client address."""

    def __init__(self) -> None:
        self._open: Counter[str] = Counter()

    def count(self, client: str | None) -> int:
        return self._open[client] if client is not None else 0

    def opened(self, client: str | None) -> None:
        if client is not None:
            self._open[client] += 1

    def closed(self, client: str | None) -> None:
        if client is None:
            return
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]


class PublishRate:
    """A token bucket per client address: `burst` publishes at once, then `rate` a second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        # Address -> (tokens left, when they were counted).
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        # A WSGI adapter checks from its request threads, beside the event loop.
        self._lock = threading.Lock()

    def wait(self, client: str | None) -> int:
        """Take a token and return 0, or return the whole seconds until one is due."""
        if self.rate <= 0 or client is None:
            return 0
        with self._lock:
            return self._take(client, time.monotonic())

    def _take(self, client: str, now: float) -> int:
        tokens, then = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1:
            tokens -= 1
            due = 0
        else:
            due = max(1, math.ceil((1 - tokens) / self.rate))
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > MAX_RATED_CLIENTS:
            self._buckets.popitem(last=False)
        return due
