"""Every knob, read once from REALTIME_* environment variables.

A bad value raises SettingsError with one line that names the variable, and
`serve` prints that line and stops: a typo should never start a server that
behaves differently from what its operator asked for.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypedDict, TypeVar
from urllib.parse import urlsplit

from .realtime.brokers import DEFAULT_URL, SCHEMES, check_url

T = TypeVar("T", int, float)

# A prefix that every broker can use as it is: Redis keys, PostgreSQL tables, NATS subjects.
NAMESPACE_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
DEFAULT_NAMESPACE = "realtime"

ENVIRONMENTS = ("development", "production")
# HS256 keys shorter than its hash are refused by the JWT standard (RFC 7518, 3.2).
MIN_SECRET_BYTES = 32
MAKE_ONE = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class SettingsError(ValueError):
    """A REALTIME_* variable holds a value that cannot be used."""


@dataclass(frozen=True, slots=True)
class Settings:
    broker_url: str = DEFAULT_URL
    # None allows only the app's own origin; ("*",) allows any.
    allowed_origins: tuple[str, ...] | None = None
    heartbeat_seconds: float = 15.0
    retry_ms: int = 3000
    history_size: int = 1000
    max_message_bytes: int = 65536
    subscriber_buffer: int = 256
    drain_seconds: float = 10.0
    # What clients can make the server hold: docs/limits.md.
    write_timeout_seconds: float = 30.0
    history_bytes: int = 64 * 1024 * 1024
    history_channels: int = 10_000
    history_idle_seconds: float = 86_400.0
    max_connections: int = 10_000
    max_client_connections: int = 100
    publish_rate: float = 50.0
    publish_burst: int = 100
    namespace: str = DEFAULT_NAMESPACE
    # Connection limits the server enforces
    # The most bytes of a request's head (request line and headers): 431 past it.
    max_header_bytes: int = 16384
    # The most header fields in a request: 431 past it.
    max_headers: int = 100
    # How long an idle keep-alive connection stays open between two requests.
    keep_alive_seconds: float = 75.0
    # How long a client has to send a whole request head, from when it connects or
    # starts the head: then the connection is closed.
    header_timeout_seconds: float = 20.0
    # How long a client has to send a whole request body once its head is in.
    body_timeout_seconds: float = 60.0
    # Access: docs/security.md
    # `production` refuses to start without a secret and allowed origins.
    environment: str = "development"
    # Signs and checks tokens (HS256); unset, a development run is open to anyone.
    secret_key: str | None = None
    # A key that back-end services publish with, as `Authorization: Bearer <key>`.
    publish_key: str | None = None
    # An identity provider's keys, for tokens it signs; its issuer and audience are checked.
    jwks_url: str | None = None
    token_issuer: str | None = None
    token_audience: str | None = None
    # How long a token minted here lasts, and a WebSocket has to send `auth` when it must.
    token_seconds: int = 3600
    auth_timeout_seconds: float = 10.0

    @property
    def auth_required(self) -> bool:
        """With a secret, every channel needs a token that grants it."""
        return self.secret_key is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        defaults = cls()

        def number(name: str, kind: Callable[[str], T], default: T, low: T, high: T) -> T:
            raw = environ.get(f"REALTIME_{name}")
            if raw is None or raw.strip() == "":
                return default
            try:
                value = kind(raw.strip())
            except ValueError:
                value = None
            if value is None or not low <= value <= high:
                raise SettingsError(
                    f"REALTIME_{name} must be a {'whole ' if kind is int else ''}number "
                    f"from {low} to {high}, got {raw!r}"
                )
            return value

        return cls(
            broker_url=_broker_url(environ.get("REALTIME_BROKER_URL", defaults.broker_url)),
            allowed_origins=_origins(environ.get("REALTIME_ALLOWED_ORIGINS")),
            heartbeat_seconds=number(
                "HEARTBEAT_SECONDS", float, defaults.heartbeat_seconds, 0.1, 3600.0
            ),
            retry_ms=number("RETRY_MS", int, defaults.retry_ms, 1, 3_600_000),
            history_size=number("HISTORY_SIZE", int, defaults.history_size, 1, 1_000_000),
            max_message_bytes=number(
                "MAX_MESSAGE_BYTES", int, defaults.max_message_bytes, 1, 64 * 1024 * 1024
            ),
            subscriber_buffer=number(
                "SUBSCRIBER_BUFFER", int, defaults.subscriber_buffer, 1, 1_000_000
            ),
            drain_seconds=number("DRAIN_SECONDS", float, defaults.drain_seconds, 0.0, 3600.0),
            write_timeout_seconds=number(
                "WRITE_TIMEOUT_SECONDS", float, defaults.write_timeout_seconds, 1.0, 3600.0
            ),
            history_bytes=number(
                "HISTORY_BYTES", int, defaults.history_bytes, 1024 * 1024, 1 << 40
            ),
            history_channels=number(
                "HISTORY_CHANNELS", int, defaults.history_channels, 1, 100_000_000
            ),
            history_idle_seconds=number(
                "HISTORY_IDLE_SECONDS", float, defaults.history_idle_seconds, 1.0, 31_536_000.0
            ),
            max_connections=number("MAX_CONNECTIONS", int, defaults.max_connections, 1, 1_000_000),
            max_client_connections=number(
                "MAX_CLIENT_CONNECTIONS", int, defaults.max_client_connections, 1, 1_000_000
            ),
            publish_rate=number("PUBLISH_RATE", float, defaults.publish_rate, 0.0, 1_000_000.0),
            publish_burst=number("PUBLISH_BURST", int, defaults.publish_burst, 1, 1_000_000),
            namespace=_namespace(environ.get("REALTIME_NAMESPACE", defaults.namespace)),
            # Connection limits the server enforces
            max_header_bytes=number(
                "MAX_HEADER_BYTES", int, defaults.max_header_bytes, 8192, 1024 * 1024
            ),
            max_headers=number("MAX_HEADERS", int, defaults.max_headers, 10, 1000),
            keep_alive_seconds=number(
                "KEEP_ALIVE_SECONDS", float, defaults.keep_alive_seconds, 1.0, 3600.0
            ),
            header_timeout_seconds=number(
                "HEADER_TIMEOUT_SECONDS", float, defaults.header_timeout_seconds, 1.0, 3600.0
            ),
            body_timeout_seconds=number(
                "BODY_TIMEOUT_SECONDS", float, defaults.body_timeout_seconds, 1.0, 3600.0
            ),
            **_access(environ),
            token_seconds=number("TOKEN_SECONDS", int, defaults.token_seconds, 60, 31_536_000),
            auth_timeout_seconds=number(
                "AUTH_TIMEOUT_SECONDS", float, defaults.auth_timeout_seconds, 0.1, 600.0
            ),
        )


class Access(TypedDict):
    environment: str
    secret_key: str | None
    publish_key: str | None
    jwks_url: str | None
    token_issuer: str | None
    token_audience: str | None


def _access(environ: Mapping[str, str]) -> Access:
    """Who may do what: refused at start-up when a deployed app would be open."""

    def text(name: str) -> str | None:
        value = environ.get(f"REALTIME_{name}", "").strip()
        return value or None

    environment = text("ENVIRONMENT") or "development"
    if environment not in ENVIRONMENTS:
        raise SettingsError(
            f"REALTIME_ENVIRONMENT must be development or production, got {environment!r}"
        )
    secret_key = text("SECRET_KEY")
    if secret_key is not None and len(secret_key.encode()) < MIN_SECRET_BYTES:
        raise SettingsError(
            f"REALTIME_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes long; {MAKE_ONE}"
        )
    if environment == "production" and secret_key is None:
        raise SettingsError(
            "REALTIME_SECRET_KEY must be set when REALTIME_ENVIRONMENT=production, or anyone "
            f"could publish and subscribe; {MAKE_ONE}"
        )
    if environment == "production" and _origins(environ.get("REALTIME_ALLOWED_ORIGINS")) is None:
        raise SettingsError(
            "REALTIME_ALLOWED_ORIGINS must name the app's public origins (such as "
            "https://app.example.com) when REALTIME_ENVIRONMENT=production: the request's "
            "Host header cannot be trusted to say it"
        )
    publish_key = text("PUBLISH_KEY")
    if publish_key is not None and len(publish_key.encode()) < MIN_SECRET_BYTES:
        raise SettingsError(
            f"REALTIME_PUBLISH_KEY must be at least {MIN_SECRET_BYTES} bytes long; {MAKE_ONE}"
        )
    jwks_url = text("JWKS_URL")
    issuer, audience = text("TOKEN_ISSUER"), text("TOKEN_AUDIENCE")
    if jwks_url is not None:
        parts = urlsplit(jwks_url)
        # Keys fetched in the clear could be swapped on the way: http only on this machine.
        local = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")
        if not parts.hostname or (parts.scheme != "https" and not local):
            raise SettingsError(f"REALTIME_JWKS_URL must be an https:// URL, got {jwks_url!r}")
        if issuer is None or audience is None:
            raise SettingsError(
                "REALTIME_JWKS_URL needs REALTIME_TOKEN_ISSUER and REALTIME_TOKEN_AUDIENCE: "
                "an identity provider's tokens are taken only for this app"
            )
        if secret_key is None:
            raise SettingsError(
                "REALTIME_JWKS_URL needs REALTIME_SECRET_KEY too, which signs stream tickets"
            )
    return Access(
        environment=environment,
        secret_key=secret_key,
        publish_key=publish_key,
        jwks_url=jwks_url,
        token_issuer=issuer,
        token_audience=audience,
    )


def _broker_url(raw: str) -> str:
    url = raw.strip() or DEFAULT_URL
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        supported = ", ".join(f"{name}://" for name in SCHEMES)
        raise SettingsError(
            f"REALTIME_BROKER_URL must start with {supported}, the broker this project "
            f"was made for, got {raw!r}"
        )
    try:
        check_url(url)
    except ValueError as error:
        raise SettingsError(f"REALTIME_BROKER_URL is not usable: {error}") from None
    return url


def _namespace(raw: str) -> str:
    name = raw.strip() or DEFAULT_NAMESPACE
    if NAMESPACE_PATTERN.fullmatch(name) is None:
        raise SettingsError(
            "REALTIME_NAMESPACE must be a lowercase letter followed by up to 39 lowercase "
            f"letters, digits or underscores, got {raw!r}"
        )
    return name


def _origins(raw: str | None) -> tuple[str, ...] | None:
    if raw is None or raw.strip() == "":
        return None
    # Browsers send origins in lowercase, without a trailing slash.
    origins = tuple(
        origin.strip().rstrip("/").lower() for origin in raw.split(",") if origin.strip()
    )
    if origins == ("*",):
        return origins
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
            raise SettingsError(
                "REALTIME_ALLOWED_ORIGINS must be '*' or comma-separated origins such as "
                f"https://app.example.com, got {origin!r}"
            )
    return origins
