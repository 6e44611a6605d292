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


class ClientLines(logging.Filter):
    """A server's own lines about what a client did: one at most per interval, no traceback.

    Servers log a client that sends a bad request or frame, or vanishes
    mid-write, some of them with a full traceback: a client can cause those on
    purpose, in a loop. Put on a handler, this keeps the first such line of
    each interval, without its traceback, and drops the rest.
    """

    def __init__(self, prefixes: tuple[str, ...], interval: float = INTERVAL_SECONDS) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.interval = interval
        self._next = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith(self.prefixes):
            return True
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.interval
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        return True


class NoQueries(logging.Filter):
    """A server's line about a request, without the request's query string.

    A stream or a WebSocket may carry a ticket in its URL (`?ticket=`); servers
    that log each WebSocket handshake (uvicorn) would write it to the log, for
    anyone who reads it to use within its seconds. Paths are kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(arg, str) and "?" in arg for arg in record.args
        ):
            record.args = tuple(
                arg.split("?", 1)[0] + "?…" if isinstance(arg, str) and "?" in arg else arg
                for arg in record.args
            )
        return True
