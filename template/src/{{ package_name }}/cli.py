"""The command line: `serve` checks the settings, then runs the chosen server; `token`
mints a token for operators, scripts and tests."""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlsplit

from . import server
from .realtime.auth import Grants, Tokens, parse_grant_patterns
from .settings import Settings, SettingsError

OPEN_WARNING = (
    "warning: REALTIME_SECRET_KEY is not set: anyone may publish and subscribe to any "
    "channel. Set it (and REALTIME_ENVIRONMENT=production) before this app faces a network."
)


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
    token = commands.add_parser("token", help="print a token signed with REALTIME_SECRET_KEY")
    token.add_argument("subject", help="who the token is for (its `sub`)")
    token.add_argument(
        "--subscribe", action="append", default=[], help="channels or patterns it may read"
    )
    token.add_argument(
        "--publish", action="append", default=[], help="channels or patterns it may write"
    )
    token.add_argument(
        "--seconds",
        type=positive_int,
        default=None,
        help="how long it lasts (default: REALTIME_TOKEN_SECONDS)",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.command == "token":
        print(mint(settings, args.subject, args.subscribe, args.publish, args.seconds))
        return
    if args.workers > 1 and urlsplit(settings.broker_url).scheme == "memory":
        print(
            f"error: --workers {args.workers} needs a broker that processes share; with "
            "REALTIME_BROKER_URL=memory:// each process would see only its own events",
            file=sys.stderr,
        )
        raise SystemExit(2)
    if settings.secret_key is None:
        print(OPEN_WARNING, file=sys.stderr)
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


def mint(
    settings: Settings,
    subject: str,
    subscribe: list[str],
    publish: list[str],
    seconds: int | None,
) -> str:
    if settings.secret_key is None:
        print("error: REALTIME_SECRET_KEY must be set to sign a token", file=sys.stderr)
        raise SystemExit(2)
    grants = Grants(
        subject, subscribe=parse_grant_patterns(subscribe), publish=parse_grant_patterns(publish)
    )
    return Tokens(settings.secret_key).mint(grants, seconds or settings.token_seconds)
