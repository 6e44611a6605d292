"""Log lines that a client can cause, at most one per interval.

A client that is cut, or that vanishes mid-write, is expected behaviour: it
is worth one line, not a traceback, and a client that does it on purpose in a
loop must not be able to flood the log. The count of lines held back is given
with the next one.
"""

from __future__ import annotations

import logging
import time

INTERVAL_SECONDS = 10.0


class RateLimitedLog:
    """One logger call per `interval` seconds for one kind of line."""

    def __init__(
        self, logger: logging.Logger, level: int, interval: float = INTERVAL_SECONDS
    ) -> None:
        self.logger = logger
        self.level = level
        self.interval = interval
        self._next = 0.0
        self._held = 0

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return
        self._next = now + self.interval
        if self._held:
            message += " (and %d more like it)"
            args = (*args, self._held)
            self._held = 0
        self.logger.log(self.level, message, *args)
