"""How an adapter runs one connection: the writer in its own task, a reader beside it.

The writer is the request's task; the reader only waits for the client to
send something or leave. When the hub finds the client too slow, the writer
may be stuck in a write that the client will never read, so the hub cancels
it, and this turns that one cancellation into an ordinary end of stream.

Cancelling the writer frees the task, not the connection: what was queued for
the client stays in the server's buffers, and most servers keep a connection
open until it is flushed, which a client that never reads never lets happen.
So the server's glue says, for each request it hands the app, how to drop
that request's connection at once (`drop_connection`); the hub calls it when
it cuts the client, and the client gets a reset.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable, Coroutine
from contextlib import suppress
from contextvars import ContextVar
from typing import Any

from .subscriber import CloseReason, Subscriber

logger = logging.getLogger(__name__)

Drop = Callable[[], object]

# How to drop the connection of the request being served, at once; set by the server's
# glue around each request it hands the app (tasks the app starts inherit it).
drop_connection: ContextVar[Drop | None] = ContextVar("drop_connection", default=None)


def reset_on_close(sock: Any) -> None:
    """Make closing `sock` reset the connection: what the client did not read is dropped."""
    with suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def transport_dropper(transport: asyncio.WriteTransport) -> Drop:
    """Drop an asyncio transport's connection at once, whatever it still has to write."""

    def drop() -> None:
        reset_on_close(transport.get_extra_info("socket"))
        transport.abort()

    return drop


def socket_dropper(sock: socket.socket) -> Drop:
    """Drop a socket's connection, also when another thread is blocked writing to it."""

    def drop() -> None:
        reset_on_close(sock)
        # Not close(): the thread that writes to it owns the descriptor. shutdown()
        # wakes that thread's write with an error, and its close then resets.
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    return drop


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
