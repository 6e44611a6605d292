"""The command line: `serve` checks the settings, then runs the chosen server."""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlsplit

from . import server
from .settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the app")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind")
    # Platforms that route to the app (Heroku, Render, Fly.io, containers) say where in $PORT.
    serve.add_argument(
        "--port",
        type=port_number,
        default=os.environ.get("PORT") or "8000",
        help="port to bind (default: $PORT, else 8000)",
    )
    serve.add_argument("--reload", action="store_true", help="restart on code changes")
    serve.add_argument(
        "--workers", type=positive_int, default=1, help="processes, each with its own hub"
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.workers > 1 and urlsplit(settings.broker_url).scheme == "memory":
        print(
            f"error: --workers {args.workers} needs a broker that processes share; with "
            "REALTIME_BROKER_URL=memory:// each process would see only its own events",
            file=sys.stderr,
        )
        raise SystemExit(2)
    server.run(settings, args.host, args.port, reload=args.reload, workers=args.workers)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(
            f"expected a port number from 0 to 65535 (from --port or $PORT), got {text!r}"
        )
    return int(text)
