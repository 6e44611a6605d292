"""Who may read and write which channel: signed tokens and the grants they carry.

A token is a JWT (RFC 7519) that names its subject (`sub`), its expiry (`exp`)
and, in the `realtime` claim, the channels it may subscribe to and publish to:
exact names, or patterns such as `chat:*` and `user:{sub}` (filled from the
subject). Tokens are signed with REALTIME_SECRET_KEY (HS256) or, with
REALTIME_JWKS_URL, by an identity provider whose issuer and audience are
checked. PyJWT does the signing and checking; what is written here is only
what a token means to the contract.

A stream ticket is a token of its own kind (`typ: ticket`): taken only from
a URL's query, only once, and only for seconds. Tokens of any other kind are
never taken from a URL, where proxies and logs would keep them.
"""

from __future__ import annotations

import asyncio
import glob
import heapq
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import jwt

CLAIM = "realtime"
ALGORITHM = "HS256"
# What an identity provider may sign with; never "none", and never HS256 with its public key.
PROVIDER_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
TICKET = "ticket"
TICKET_SECONDS = 30
# How many unexpired tickets a process remembers as used; past it, no new ticket is minted.
MAX_TICKETS = 100_000
# Grants are short lists; a token that carries more is refused rather than matched slowly.
MAX_GRANTS = 256


class Unauthorized(Exception):
    """No credentials, or credentials that are forged, expired or of the wrong kind."""


def _allows(patterns: tuple[str, ...], channel: str, subject: str) -> bool:
    # Channel names hold no glob characters; a subject may, so it is escaped before it is
    # put in a pattern, and `user:{sub}` matches that one user's channel only.
    own = glob.escape(subject)
    return any(fnmatchcase(channel, pattern.replace("{sub}", own)) for pattern in patterns)


@dataclass(frozen=True, slots=True)
class Grants:
    """What one token holder may do, until when."""

    subject: str
    subscribe: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()
    expires: float | None = None

    def may_subscribe(self, channel: str) -> bool:
        return _allows(self.subscribe, channel, self.subject)

    def may_publish(self, channel: str) -> bool:
        return _allows(self.publish, channel, self.subject)

    def claims(self, seconds: float, now: float | None = None) -> dict[str, Any]:
        issued = int(now if now is not None else time.time())
        return {
            "sub": self.subject,
            "iat": issued,
            "exp": issued + int(seconds),
            CLAIM: {"subscribe": list(self.subscribe), "publish": list(self.publish)},
        }


# What a process grants when no secret is set: anything, to anyone (a local run).
OPEN = Grants("anonymous", subscribe=("*",), publish=("*",))
# What REALTIME_PUBLISH_KEY grants: publishing anywhere, for back-end services.
SERVER = Grants("server", publish=("*",))


def _patterns(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or len(value) > MAX_GRANTS
        or not all(isinstance(item, str) and 0 < len(item) <= 256 for item in value)
    ):
        raise Unauthorized(f"the token's {CLAIM}.{name} must be a list of channel patterns")
    return tuple(value)


def _is_text(value: str) -> bool:
    """Text that UTF-8, so every wire format, can carry: no lone surrogate."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _expiry(value: Any) -> float | None:
    """`exp` as a time: a JSON number that a float holds. PyJWT also takes a string of
    digits, and an integer of hundreds of digits, which no timer can wait for."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized("the token's exp must be a number")
    try:
        return float(value)
    except OverflowError:
        raise Unauthorized("the token's exp must be a number") from None


def grants_of(claims: dict[str, Any]) -> Grants:
    """The grants a checked token's claims carry."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 256 or not _is_text(subject):
        raise Unauthorized("the token names no subject")
    granted = claims.get(CLAIM) or {}
    if not isinstance(granted, dict):
        raise Unauthorized(f"the token's {CLAIM} claim must be an object")
    return Grants(
        subject,
        subscribe=_patterns(granted.get("subscribe"), "subscribe"),
        publish=_patterns(granted.get("publish"), "publish"),
        expires=_expiry(claims.get("exp")),
    )


class Tokens:
    """Mints and checks this app's tokens, and an identity provider's when configured."""

    def __init__(
        self,
        secret_key: str,
        *,
        publish_key: str | None = None,
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        self._key = secret_key
        self._publish_key = publish_key.encode() if publish_key else None
        self._issuer = issuer
        self._audience = audience
        # PyJWKClient fetches and caches the provider's keys; it blocks, so it runs in a thread.
        self._provider = jwt.PyJWKClient(jwks_url, timeout=5) if jwks_url else None
        # Ticket ids already used: a ticket opens one stream only.
        self._used: set[str] = set()
        # The same ids by when each expires, soonest first: forgetting them costs no scan.
        self._expiring: list[tuple[float, str]] = []

    def mint(self, grants: Grants, seconds: float) -> str:
        return jwt.encode(grants.claims(seconds), self._key, algorithm=ALGORITHM)

    def mint_ticket(self, grants: Grants) -> str:
        """A single-use ticket for a URL: the holder's grants, for seconds at most."""
        self._forget_expired()
        if len(self._used) >= MAX_TICKETS:
            raise Unauthorized("too many tickets are in use; retry shortly")
        now = time.time()
        seconds = TICKET_SECONDS
        if grants.expires is not None:
            seconds = min(seconds, max(0, int(grants.expires - now)))
        claims = grants.claims(seconds, now) | {"typ": TICKET, "jti": secrets.token_urlsafe(16)}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def is_publish_key(self, token: str) -> bool:
        return self._publish_key is not None and hmac.compare_digest(
            token.encode(), self._publish_key
        )

    async def check(self, token: str) -> Grants:
        """The grants of a bearer token or a cookie's token; never a ticket."""
        if self.is_publish_key(token):
            return SERVER
        claims = await self._claims(token)
        if claims.get("typ") == TICKET:
            raise Unauthorized("a ticket opens a stream from a URL only")
        return grants_of(claims)

    async def redeem(self, ticket: str) -> Grants:
        """The grants of a ticket from a URL, which no one may use again."""
        claims = self._decode(ticket)
        ticket_id = claims.get("jti")
        if claims.get("typ") != TICKET or not isinstance(ticket_id, str):
            raise Unauthorized("only a ticket may be sent in a URL")
        grants = grants_of(claims)
        self._forget_expired()
        if ticket_id in self._used:
            raise Unauthorized("this ticket was used already")
        expires = grants.expires
        self._used.add(ticket_id)
        heapq.heappush(
            self._expiring,
            (expires if expires is not None else time.time() + TICKET_SECONDS, ticket_id),
        )
        return grants

    def _forget_expired(self) -> None:
        now = time.time()
        while self._expiring and self._expiring[0][0] < now:
            _, ticket_id = heapq.heappop(self._expiring)
            self._used.discard(ticket_id)

    async def _claims(self, token: str) -> dict[str, Any]:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.InvalidTokenError:
            raise Unauthorized("the token is not a JWT") from None
        if algorithm == ALGORITHM:
            return self._decode(token)
        if self._provider is None or algorithm not in PROVIDER_ALGORITHMS:
            raise Unauthorized("the token is not signed with a key this app trusts")
        provider = self._provider
        try:
            key = await asyncio.to_thread(provider.get_signing_key_from_jwt, token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=PROVIDER_ALGORITHMS,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWKClientError:
            raise Unauthorized("the identity provider's keys do not sign this token") from None
        except jwt.InvalidTokenError as error:
            raise Unauthorized(_reason(error)) from None
        return claims

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
            )
        except jwt.InvalidTokenError as error:
            raise Unauthorized(_reason(error)) from None
        return claims


def _reason(error: jwt.InvalidTokenError) -> str:
    """Why a token was refused, in words that hold nothing of the token."""
    if isinstance(error, jwt.ExpiredSignatureError):
        return "the token has expired"
    if isinstance(error, jwt.InvalidSignatureError):
        return "the token's signature is not valid"
    if isinstance(error, jwt.InvalidAudienceError | jwt.InvalidIssuerError):
        return "the token was not issued for this app"
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"the token has no {error.claim!r} claim"
    return "the token is not valid"


def parse_grant_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Patterns from a command line: comma- or space-separated, empty ones dropped."""
    return tuple(part for pattern in patterns for part in pattern.replace(",", " ").split())
