"""How an adapter runs one connection: the writer in its own task, a reader beside it.

The writer is the request's task; the reader only waits for the client to
send something or leave. When the hub finds the client too slow, the writer
may be stuck in a write that the client will never read, so the hub cancels
it, and this turns that one cancellation into an ordinary end of stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from .subscriber import CloseReason, Subscriber

logger = logging.getLogger(__name__)


async def run_connection(
    subscriber: Subscriber,
    writer: Coroutine[Any, Any, CloseReason],
    reader: Coroutine[Any, Any, None],
) -> CloseReason:
    """Run `writer` here and `reader` in a task until either ends; say why it ended."""
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("run_connection must run inside an asyncio task")
    reading = asyncio.create_task(_read(subscriber, reader))
    subscriber.on_abort = task.cancel
    try:
        return await writer
    except asyncio.CancelledError:
        # Only the hub's own cancellation is absorbed; any other one goes on.
        if subscriber.close_reason is not CloseReason.SLOW or task.uncancel() > 0:
            raise
        return CloseReason.SLOW
    finally:
        subscriber.on_abort = None
        reading.cancel()
        # Done before the adapter closes the connection that the reader reads from.
        await asyncio.wait([reading])


async def _read(subscriber: Subscriber, reader: Coroutine[Any, Any, None]) -> None:
    try:
        await reader
    except Exception:
        logger.exception("reading from a %s client failed", subscriber.protocol)
    finally:
        # The client left (or broke the protocol): the writer has nothing more to do.
        subscriber.close(CloseReason.GONE)
