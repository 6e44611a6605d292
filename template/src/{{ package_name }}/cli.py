"""The command line: `serve` runs the app under uvicorn with production flags."""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import math
import socket
import sys
from types import FrameType
from typing import Any

import uvicorn

from .app import create_app
from .realtime.hub import Hub
from .settings import Settings, SettingsError

# Longer than the idle timeouts of common proxies and load balancers (60 s), so
# that the proxy, not the app, closes idle keep-alive connections.
KEEP_ALIVE_SECONDS = 75

logger = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """On SIGTERM or SIGINT, end open streams cleanly before uvicorn closes connections.

    uvicorn waits for open responses to finish, but real-time streams never
    finish by themselves: the hub must first tell them to. A second signal
    stops at once.
    """

    def __init__(self, config: uvicorn.Config, hub: Hub, drain_seconds: float) -> None:
        super().__init__(config)
        self.hub = hub
        self.drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._loop is None or self._drain is not None or self.should_exit:
            super().handle_exit(sig, frame)
            return
        # A signal handler runs between two bytecodes of whatever the loop was doing.
        self._loop.call_soon_threadsafe(self._start_drain, sig, frame)

    def _start_drain(self, sig: int, frame: FrameType | None) -> None:
        if self._drain is None:
            self._drain = asyncio.create_task(self._drain_then_exit(sig, frame))

    async def _drain_then_exit(self, sig: int, frame: FrameType | None) -> None:
        logger.info("draining open streams for up to %s s", self.drain_seconds)
        await self.hub.drain(self.drain_seconds)
        super().handle_exit(sig, frame)


def log_config() -> dict[str, Any]:
    """uvicorn's own logging, extended to this package's loggers."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"][__package__] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def serve(settings: Settings, host: str, port: int, *, reload: bool) -> None:
    if reload:
        # The reloader imports the app in a child process: no drain, for development only.
        uvicorn.run(
            f"{__package__}.app:create_app",
            factory=True,
            reload=True,
            host=host,
            port=port,
            ws_per_message_deflate=False,
            ws_max_size=settings.max_message_bytes,
            log_config=log_config(),
        )
        return
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # Streams are told to end first; this bounds whatever is left after that.
        timeout_graceful_shutdown=max(1, math.ceil(settings.drain_seconds)),
        access_log=False,
        proxy_headers=True,
        # A compression context per socket costs ~50 KiB and defeats encode-once fan-out.
        ws_per_message_deflate=False,
        ws_max_size=settings.max_message_bytes,
        ws_ping_interval=settings.heartbeat_seconds,
        log_config=log_config(),
    )
    DrainingServer(config, app.state.hub, settings.drain_seconds).run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_command = commands.add_parser("serve", help="run the app")
    serve_command.add_argument("--host", default="127.0.0.1", help="address to bind")
    serve_command.add_argument("--port", type=int, default=8000, help="port to bind")
    serve_command.add_argument("--reload", action="store_true", help="restart on code changes")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    serve(settings, args.host, args.port, reload=args.reload)
