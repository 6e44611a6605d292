"""Prometheus metrics, with names that dashboards can rely on.

No label carries a channel name: channel names are unbounded, and every label
value is a time series kept forever.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    """One registry per app, so that two apps in one process never share counts."""

    def __init__(self, protocols: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.connections = Gauge(
            "realtime_connections",
            "Open real-time connections.",
            ["protocol"],
            registry=self.registry,
        )
        self.subscribers = Gauge(
            "realtime_subscribers",
            "Open channel subscriptions, over all connections.",
            registry=self.registry,
        )
        self.published = Counter(
            "realtime_events_published",
            "Events accepted for publishing by this process.",
            registry=self.registry,
        )
        self.delivered = Counter(
            "realtime_events_delivered",
            "Events written to subscribers by this process.",
            ["protocol"],
            registry=self.registry,
        )
        self.slow_consumer_disconnects = Counter(
            "realtime_slow_consumer_disconnects",
            "Connections closed because they fell too far behind.",
            registry=self.registry,
        )
        self.broker_up = Gauge(
            "realtime_broker_up",
            "1 while the broker is connected, else 0.",
            registry=self.registry,
        )
        for protocol in protocols:
            # Show every series from the start, at zero, rather than when first used.
            self.connections.labels(protocol)
            self.delivered.labels(protocol)

    def render(self) -> bytes:
        return generate_latest(self.registry)
