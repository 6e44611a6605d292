"""The contract's use cases, each decided once for every framework.

An adapter reads its framework's request into `Facts`, calls one method of
`Service` (or `streams.open_stream`, `websocket.accept_socket`), and turns the
`Answer` it returns into its framework's response. Every refusal, access
included, is an `APIError` raised here, which the adapter's one error
handler renders with `Service.refusal`.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .auth import OPEN, Grants, Tokens, Unauthorized
from .brokers import BrokerUnavailable
from .checks import (
    APIError,
    broker_error,
    check_publish_rate,
    checked_channel,
    checked_id,
    checked_limit,
    history_body,
    read_json_body,
)
from .events import dump_json
from .hub import Hub
from .metrics import CONTENT_TYPE_LATEST

# The cookie that carries a browser's token to EventSource and WebSocket, which send no header.
AUTH_COOKIE = "realtime_token"
JSON = "application/json"

# Every JSON answer: nothing in it is a page, a script or a frame.
API_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
# The demo page: its own script, style and connections only (`'self'` covers ws: and wss:).
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
}
# What a cross-origin page may send and read (CORS).
CORS_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type, Last-Event-ID"
CORS_MAX_AGE = "600"
LOOPBACK_NAMES = ("localhost", "localhost.")


@dataclass(frozen=True, slots=True)
class Facts:
    """What the core needs to know of a request, read the framework's way."""

    client: str | None = None  # the peer's address (the server trusts a proxy's headers)
    scheme: str = "http"  # http or https, as the client reached the app
    host: str | None = None
    origin: str | None = None
    authorization: str | None = None
    cookie: str | None = None  # the AUTH_COOKIE's value
    last_event_id: str | None = None
    content_type: str | None = None
    content_length: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Answer:
    """A response for the adapter to send: status, body and headers."""

    status: int
    body: bytes
    headers: dict[str, str]
    media_type: str = JSON


def json_answer(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Answer:
    return Answer(status, dump_json(value).encode(), {**API_HEADERS, **(headers or {})})


def unauthorized(message: str, *, token_given: bool) -> APIError:
    challenge = 'Bearer realm="realtime"' + (', error="invalid_token"' if token_given else "")
    return APIError(401, "unauthorized", message, {"WWW-Authenticate": challenge})


def forbidden(channel: str, right: str) -> APIError:
    return APIError(403, "forbidden", f"the token does not grant {right} on {channel!r}")


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@contextmanager
def broker_errors() -> Iterator[None]:
    """The broker is away: an answer that says so, and when to retry."""
    try:
        yield
    except BrokerUnavailable as error:
        raise broker_error(error.code, str(error)) from None


class Service:
    """The hub, with the rules of the contract around it."""

    def __init__(
        self,
        hub: Hub,
        *,
        max_message_bytes: int,
        body_timeout_seconds: float,
        retry_ms: int,
        allowed_origins: tuple[str, ...] | None,
        tokens: Tokens | None = None,
        token_seconds: int = 3600,
        auth_timeout_seconds: float = 10.0,
    ) -> None:
        self.hub = hub
        self.max_message_bytes = max_message_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self.retry_ms = retry_ms
        self.allowed_origins = allowed_origins
        # None: no secret is set, and anyone may do anything (a local run).
        self.tokens = tokens
        self.token_seconds = token_seconds
        self.auth_timeout_seconds = auth_timeout_seconds

    # Who is asking

    def origin_allowed(self, facts: Facts) -> bool:
        """Browsers send Origin; a page elsewhere must not ride on its visitors' cookies.

        Clients that are not browsers send no Origin, and could forge one anyway.
        Without REALTIME_ALLOWED_ORIGINS (a local run), the app's own origin is
        taken from the Host header, on a loopback address only: a page that
        rebinds its own name to this machine sends its own name as the Host.
        """
        origin = facts.origin
        if origin is None:
            return True
        allowed = self.allowed_origins
        if allowed is None:
            host = facts.host or ""
            own = f"{facts.scheme}://{host}"
            return origin.lower() == own.lower() and is_loopback(host)
        return "*" in allowed or origin.lower() in allowed

    async def grants(self, facts: Facts) -> Grants:
        """The grants of the request's credentials; 401 without any."""
        grants = await self.credentials(facts)
        if grants is None:
            raise unauthorized(
                "this needs a token: Authorization: Bearer <token>, the "
                f"{AUTH_COOKIE} cookie, or a ?ticket=",
                token_given=False,
            )
        return grants

    async def credentials(self, facts: Facts) -> Grants | None:
        """The grants of the request's credentials: a bearer token, a ticket, or a cookie.

        Tokens travel in a header or an HttpOnly cookie; in a URL, only a
        ticket, which opens one stream within seconds. None when there are none.
        """
        tokens = self.tokens
        if tokens is None:
            return OPEN
        try:
            if facts.authorization is not None:
                scheme, _, token = facts.authorization.partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise Unauthorized("send the token as Authorization: Bearer <token>")
                return await tokens.check(token.strip())
            ticket = facts.query.get("ticket")
            if ticket is not None:
                return await tokens.redeem(ticket)
            if facts.cookie is not None:
                if not self.origin_allowed(facts):
                    raise APIError(
                        403, "origin_not_allowed", "this Origin may not use this site's cookie"
                    )
                return await tokens.check(facts.cookie)
        except Unauthorized as error:
            raise unauthorized(str(error), token_given=True) from None
        return None

    async def may_subscribe(self, facts: Facts, channel: str) -> Grants:
        grants = await self.grants(facts)
        if not grants.may_subscribe(channel):
            raise forbidden(channel, "subscribe")
        return grants

    # The contract's use cases

    async def publish(
        self, facts: Facts, channel: str, body: bytes | AsyncIterable[bytes]
    ) -> Answer:
        """POST /channels/{channel}/events: publish any JSON value."""
        channel = checked_channel(channel)
        grants = await self.grants(facts)
        if not grants.may_publish(channel):
            raise forbidden(channel, "publish")
        check_publish_rate(self.hub, facts.client)
        chunks = _chunks(body) if isinstance(body, bytes) else body
        data = await read_json_body(
            facts.content_type,
            facts.content_length,
            chunks,
            self.max_message_bytes,
            self.body_timeout_seconds,
        )
        with broker_errors():
            event = await self.hub.publish(channel, data)
        return self.answer(facts, json_answer({"channel": channel, "id": event.id}, 202))

    async def history(self, facts: Facts, channel: str) -> Answer:
        """GET /channels/{channel}/events: the channel's recent events, oldest first."""
        channel = checked_channel(channel)
        await self.may_subscribe(facts, channel)
        after = checked_id(self.hub, facts.query.get("after"), "after")
        limit = checked_limit(self.hub, facts.query.get("limit"))
        with broker_errors():
            found = await self.hub.history(channel, after, limit)
        # Built from each event's JSON as it is kept: the data is not parsed again.
        body = history_body(channel, found.events).encode()
        return self.answer(facts, Answer(200, body, dict(API_HEADERS)))

    def health(self) -> Answer:
        """GET /healthz: the process runs."""
        return json_answer({"status": "ok"})

    def readiness(self) -> Answer:
        """GET /readyz: 200 while the broker is connected and the server is not draining."""
        status = self.hub.readiness
        return json_answer({"status": status}, 200 if status == "ready" else 503)

    def metrics(self) -> Answer:
        """GET /metrics: Prometheus's text format."""
        return Answer(200, self.hub.metrics.render(), {}, CONTENT_TYPE_LATEST)

    # Access

    async def token(self, facts: Facts, grants: Grants | None) -> Answer:
        """POST /auth/token: a token for the logged-in user, with the grants the app decided."""
        tokens = self._tokens_or_off()
        if grants is None:
            raise unauthorized("log in first", token_given=False)
        token = tokens.mint(grants, self.token_seconds)
        answer = json_answer({"token": token, "expires_in": self.token_seconds})
        return self.answer(facts, answer)

    async def ticket(self, facts: Facts) -> Answer:
        """POST /auth/ticket: a single-use ticket to open one stream from a URL."""
        tokens = self._tokens_or_off()
        grants = await self.grants(facts)
        try:
            ticket = tokens.mint_ticket(grants)
        except Unauthorized as error:
            raise APIError(503, "too_many_tickets", str(error), {"Retry-After": "5"}) from None
        return self.answer(facts, json_answer({"ticket": ticket}))

    async def open_session(self, facts: Facts) -> Answer:
        """POST /auth/session: keep the bearer token in an HttpOnly cookie, for EventSource
        and WebSocket in a browser, which cannot send a header."""
        self._tokens_or_off()
        if facts.authorization is None:
            raise unauthorized("send the token as Authorization: Bearer <token>", token_given=False)
        grants = await self.grants(facts)
        _, _, token = facts.authorization.partition(" ")
        lasts = int(grants.expires - time.time()) if grants.expires is not None else None
        cookie = f"{AUTH_COOKIE}={token.strip()}; Path=/; HttpOnly; SameSite=Strict"
        if lasts is not None:
            cookie += f"; Max-Age={max(lasts, 0)}"
        if facts.scheme == "https":
            cookie += "; Secure"
        answer = json_answer(
            {"subject": grants.subject, "expires": grants.expires}, 200, {"Set-Cookie": cookie}
        )
        return self.answer(facts, answer)

    def close_session(self, facts: Facts) -> Answer:
        """DELETE /auth/session: forget the cookie."""
        cookie = f"{AUTH_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        return self.answer(facts, json_answer({"status": "ok"}, 200, {"Set-Cookie": cookie}))

    def _tokens_or_off(self) -> Tokens:
        if self.tokens is None:
            raise APIError(
                404, "auth_off", "no REALTIME_SECRET_KEY is set: anyone may publish and subscribe"
            )
        return self.tokens

    # Answers

    def preflight(self, facts: Facts) -> Answer:
        """OPTIONS: what a page on another origin may send, if it may."""
        if facts.origin is None:
            return Answer(204, b"", {"Allow": CORS_METHODS})
        if not self.origin_allowed(facts):
            raise APIError(403, "origin_not_allowed", "this Origin may not call this API")
        headers = {
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Access-Control-Allow-Headers": CORS_HEADERS,
            "Access-Control-Max-Age": CORS_MAX_AGE,
        }
        return self.answer(facts, Answer(204, b"", headers))

    def answer(self, facts: Facts, answer: Answer) -> Answer:
        """`answer` with what lets a listed origin read it (CORS)."""
        answer.headers.update(self.cors_headers(facts))
        return answer

    def cors_headers(self, facts: Facts) -> dict[str, str]:
        origin = facts.origin
        allowed = self.allowed_origins
        if origin is None or allowed is None:
            return {}
        if origin.lower() in allowed:
            # Credentials only for an origin that is listed by name, never for "*".
            return {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Credentials": "true",
                "Access-Control-Expose-Headers": "Retry-After",
                "Vary": "Origin",
            }
        if "*" in allowed:
            return {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Expose-Headers": "Retry-After",
            }
        return {}

    def refusal(self, facts: Facts, error: APIError) -> Answer:
        """The one way every refusal is answered: JSON `{"error", "message"}`."""
        return self.answer(facts, json_answer(error.body, error.status, error.headers))


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    yield body
