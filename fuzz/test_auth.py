"""Access on the secured server: any token, cookie and ticket, presented any way.

The secured server (conftest.py) has REALTIME_SECRET_KEY and REALTIME_PUBLISH_KEY
set. Each example makes a credential (strategies.py: tokens signed with the right
key and random claims, with a wrong key or none, junk, the publish key, tickets),
presents it (a bearer header in any form, the cookie with or without an Origin,
?ticket=, the WebSocket `auth` op or handshake), and checks the answer against an
oracle: what the contract grants, computed here from the credential's header,
claims and signer. Besides: never a 5xx or a traceback, every refusal the
contract's JSON error, and no token in an answer or the server's log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import glob
import json
import math
import re
import time
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from . import strategies as s
from .checks import DEADLINE, STREAM_TYPES, check_answer, id_key, media_type, valid_json, within
from .conftest import Server
from .listeners import ws_message

CHANNEL = re.compile(s.CHANNEL_REGEX)
# What the contract keeps short: the patterns of one grant, and each pattern.
MAX_GRANTS = 256
MAX_PATTERN = 256
MAX_SUBJECT = 256
# Channels every example may use, beside the ones its grants and subject suggest.
CHANNELS = ["room:a", "room:b", "lobby", "user:alice", "user:x", "alice", "a", "p0", "p599", "x"]
# A string shorter than this may well appear in a log or an answer by chance.
SHORTEST_SECRET = 16
TOKEN_TEXT = re.compile(r"[A-Za-z0-9._~+/=-]+")


def is_channel(name: str) -> bool:
    return CHANNEL.fullmatch(name) is not None


# --- the oracle --------------------------------------------------------------------------------


class Refused(Exception):
    """The credential is not valid: 401."""


@dataclass(frozen=True)
class Grants:
    """What a valid credential grants, as the contract reads its claims."""

    subject: str
    subscribe: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()
    expires: float | None = None

    def may(self, right: str, channel: str) -> bool:
        # {sub} is filled with the subject, its glob characters escaped.
        own = glob.escape(self.subject)
        patterns = self.subscribe if right == "subscribe" else self.publish
        return any(fnmatchcase(channel, pattern.replace("{sub}", own)) for pattern in patterns)


# REALTIME_PUBLISH_KEY: publishing anywhere.
SERVER = Grants("server", publish=("*",))


def is_time(value: Any) -> bool:
    """A NumericDate: a JSON number that every reader holds (not a string, not a boolean)."""
    if type(value) not in (int, float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def is_text(value: Any) -> bool:
    """A string that UTF-8 can carry (no lone surrogate)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def patterns_of(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or len(value) > MAX_GRANTS
        or not all(isinstance(item, str) and 0 < len(item) <= MAX_PATTERN for item in value)
    ):
        raise Refused("grants must be a short list of patterns")
    return tuple(value)


def header_is_trusted(header: Any) -> bool:
    """HS256, and nothing in the header that changes how the token is read."""
    return (
        isinstance(header, dict)
        and header.get("alg") == "HS256"
        and isinstance(header.get("kid", ""), str)
        and "crit" not in header
        and header.get("b64", True) is not False
    )


def trusted_claims(made: s.Made) -> dict[str, Any]:
    """The claims of a JWT signed with the app's key, HS256. Raises Refused."""
    if made.header is None or made.claims is None:
        raise Refused("not a JWT")
    (header,), (claims,) = made.header, made.claims
    if not header_is_trusted(header) or made.key != "right" or made.digest != "HS256":
        raise Refused("not signed with the app's key")
    if not isinstance(claims, dict):
        raise Refused("claims must be an object")
    return claims


def check_registered(claims: dict[str, Any], now: float) -> None:
    """The registered claims any JWT reader checks: times, jti, audience."""
    expires = claims.get("exp")
    if expires is None or not is_time(expires) or expires <= now:
        raise Refused("no expiry, or expired")
    for name in ("iat", "nbf"):
        if name in claims and (not is_time(claims[name]) or claims[name] > now):
            raise Refused(f"{name} is no time, or is to come")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise Refused("jti must be a string")
    if claims.get("aud"):
        raise Refused("the token was issued for an audience")


def grants_of(claims: dict[str, Any]) -> Grants:
    """The subject and the realtime claim's grants."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT or not is_text(subject):
        raise Refused("no subject")
    # An empty claim grants nothing; any other that is no object is refused.
    granted = claims.get("realtime") or {}
    if not isinstance(granted, dict):
        raise Refused("the realtime claim must be an object")
    return Grants(
        subject,
        patterns_of(granted.get("subscribe")),
        patterns_of(granted.get("publish")),
        float(claims["exp"]),
    )


def expected_grants(made: s.Made, mode: str, now: float) -> Grants:
    """What `made` grants presented as `mode`: "ticket" (in a URL), or "bearer" (a header,
    the cookie, the WebSocket auth op). Raises Refused."""
    if made.ticket_of is not None:
        if mode != "ticket":
            raise Refused("a ticket is taken from a URL only")
        return expected_grants(made.ticket_of, "bearer", now)
    if made.publish_key:
        if mode == "ticket":
            raise Refused("the publish key is no ticket")
        return SERVER
    claims = trusted_claims(made)
    check_registered(claims, now)
    grants = grants_of(claims)
    is_ticket = claims.get("typ") == "ticket"
    if mode == "ticket" and not (is_ticket and isinstance(claims.get("jti"), str)):
        raise Refused("only a ticket (typ ticket, a jti) is taken from a URL")
    if mode != "ticket" and is_ticket:
        raise Refused("a ticket is taken from a URL only")
    return grants


@dataclass(frozen=True)
class Outcome:
    """The answer the contract gives: a status, and for a refusal its error code."""

    status: int
    code: str | None = None
    # For a 401: whether the server must say that a token it was given is invalid;
    # None where it cannot be told (a junk header, a cookie that may not parse).
    invalid_token: bool | None = None


def exact(text: str) -> bool:
    """Whether a header or cookie carries `text` exactly as it is."""
    return TOKEN_TEXT.fullmatch(text) is not None


def refused_unread(made: s.Made | None, presented: s.Presented, channel: str) -> Outcome | None:
    """A refusal decided before any token is read: a bad channel, no credentials, a
    cookie from an Origin not listed, a header that holds no bearer token."""
    origin = presented.origin
    if not is_channel(channel):
        return Outcome(400, "bad_channel")
    if made is None or presented.how == "none":
        return Outcome(401, "unauthorized", invalid_token=False)
    if presented.how == "cookie" and origin is not None and origin.lower() != s.LISTED_ORIGIN:
        return Outcome(403, "origin_not_allowed")
    if presented.how == "bearer" and presented.form not in s.EXACT_BEARER_FORMS:
        return Outcome(401, "unauthorized", invalid_token=exact(made.text) or None)
    return None


def outcome(
    made: s.Made | None,
    presented: s.Presented,
    channel: str,
    right: str,
    success: int,
    *,
    used: bool = False,
) -> Outcome:
    """What a request to `channel` needing `right` is answered, `made` presented so;
    `used`: a second time."""
    early = refused_unread(made, presented, channel)
    if early is not None or made is None:
        return early or Outcome(401, "unauthorized")
    refused = Outcome(401, "unauthorized", invalid_token=exact(made.text) or None)
    if used:
        return dataclasses.replace(refused, invalid_token=True)
    try:
        grants = expected_grants(made, presented.how, time.time())
    except Refused:
        return refused
    return Outcome(success) if grants.may(right, channel) else Outcome(403, "forbidden")


# --- making and presenting credentials ---------------------------------------------------------


def hidden(*made: s.Made | None) -> list[str]:
    """What must never be seen again: tokens, tickets, keys, and their signatures."""
    found = {s.PUBLISH_KEY, s.SIGNING_KEY}
    for each in made:
        if each is None or each.kind == "junk":
            continue
        found.add(each.text)
        found.add(each.text.rpartition(".")[2])
        if each.ticket_of is not None:
            found.update(hidden(each.ticket_of))
    return sorted(secret for secret in found if len(secret) >= SHORTEST_SECRET)


def never_shown(text: str | bytes | bytearray, secrets: list[str], what: str) -> None:
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8", "replace")
    for secret in secrets:
        assert secret not in text, f"{what} holds a token: {secret!r} in {text[:1000]!r}"


def check_outcome(
    response: httpx.Response, body: bytes, expected: Outcome, secrets: list[str]
) -> None:
    """The answer is the one expected; a refusal is the contract's JSON error, and
    holds no token."""
    check_answer(response, body)
    where = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == expected.status, (
        f"{where}: expected {expected}, got {response.status_code} {body[:500]!r}"
    )
    if expected.code is None:
        return
    never_shown(body, secrets, f"{where}: the refusal")
    assert media_type(response) == "application/json", response.headers
    error = valid_json(body, "the refusal")
    assert error["error"] == expected.code, (expected, error)
    if expected.status == 401:
        challenge = response.headers.get("www-authenticate", "")
        assert challenge.startswith("Bearer "), (where, response.headers)
        if expected.invalid_token is not None:
            assert ('error="invalid_token"' in challenge) is expected.invalid_token, (
                expected,
                challenge,
            )


def header_value(text: str) -> bytes:
    """`text` as a header value: as it is where HTTP allows it (surrounding whitespace is
    not part of a value), else without what it forbids."""
    if all(char == "\t" or " " <= char <= "~" for char in text):
        return text.strip(" \t").encode("ascii")
    return s.as_header(text)


def request_parts(
    made: s.Made | None, presented: s.Presented
) -> tuple[dict[str, Any], dict[str, str]]:
    """The headers and query that present `made` so."""
    headers: dict[str, Any] = {}
    query: dict[str, str] = {}
    if presented.origin is not None:
        headers["Origin"] = presented.origin.encode()
    if made is None or presented.how == "none":
        return headers, query
    value = presented.form.replace("{}", made.text)
    if presented.how == "bearer":
        headers["Authorization"] = header_value(value)
    elif presented.how == "cookie":
        headers["Cookie"] = header_value(value)
    else:
        query["ticket"] = made.text
    return headers, query


def path_with(path: str, query: dict[str, str]) -> str:
    if not query:
        return path
    parts = "&".join(
        f"{name}={quote(value.encode('utf-8', 'ignore'), safe='')}" for name, value in query.items()
    )
    return f"{path}?{parts}"


async def make(http: httpx.AsyncClient, credential: s.Credential, now: int) -> s.Made:
    """The credential, made now; a ticket is asked of the server, whose answer is checked.
    A holder refused a ticket is used as it is."""
    if not isinstance(credential, s.Ticket):
        return credential.make(now)
    holder = credential.of.make(now)
    response = await within(
        http.post("/auth/ticket", headers={"Authorization": f"Bearer {holder.text}"}),
        "the ticket",
    )
    try:
        expected_grants(holder, "bearer", time.time())
        expected = Outcome(200)
    except Refused:
        expected = Outcome(401, "unauthorized", invalid_token=True)
    check_outcome(response, response.content, expected, hidden(holder))
    if response.status_code != 200:
        return holder
    answer = valid_json(response.content, "the ticket answer")
    assert isinstance(answer, dict), answer
    assert isinstance(answer.get("ticket"), str), answer
    return s.Made(answer["ticket"], "ticket", ticket_of=holder)


# --- channels ----------------------------------------------------------------------------------


def holder_of(credential: s.Credential) -> s.Credential:
    return credential.of if isinstance(credential, s.Ticket) else credential


def suggested_channels(credential: s.Credential, right: str) -> tuple[list[str], list[str]]:
    """Channels the credential's grants for `right` name or nearly name, and others its
    subject or its other grants suggest."""
    near: list[str] = []
    others = list(CHANNELS)
    signed = holder_of(credential)
    if not isinstance(signed, s.Signed) or not isinstance(signed.claims, dict):
        return near, others
    subject = signed.claims.get("sub")
    subject = subject if isinstance(subject, str) else "alice"
    others += [f"user:{subject}", subject, f"{subject}:a"]
    granted = signed.claims.get("realtime")
    for name in ("subscribe", "publish"):
        patterns = granted.get(name) if isinstance(granted, dict) else None
        if not isinstance(patterns, list):
            continue
        for pattern in [*patterns[:3], *patterns[-2:]]:
            if isinstance(pattern, str):
                filled = pattern.replace("{sub}", subject)
                found = [filled, filled.replace("*", "x").replace("?", "q"), filled + "x"]
                (near if name == right else others).extend(found)
    return [channel for channel in near if is_channel(channel)], [
        channel for channel in others if is_channel(channel)
    ]


def channels_for(credential: s.Credential, right: str) -> st.SearchStrategy[str]:
    near, others = suggested_channels(credential, right)
    suggested = st.sampled_from(others)
    if near:
        suggested = s.weighted((2, st.sampled_from(near)), (1, suggested))
    return s.weighted((8, suggested), (1, s.valid_channels), (1, st.just("a b")))


def minted(credential: s.Credential, how: str, data: st.DataObject) -> s.Credential:
    """Where a ticket is presented, mostly one the server minted for this credential."""
    if how != "ticket" or not isinstance(credential, s.Signed | s.PublishKey):
        return credential
    if data.draw(st.booleans(), label="minted as a ticket"):
        return s.Ticket(credential)
    return credential


def client(server: Server) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=DEADLINE)


# --- HTTP --------------------------------------------------------------------------------------


# The choices among a few first: drawn after a credential, hypothesis varies them less.
@given(presented=s.presentations, credential=s.credentials, data=st.data())
def test_publish_with_any_credential(
    secured: Server, presented: s.Presented, credential: s.Credential, data: st.DataObject
) -> None:
    """POST /channels/{c}/events with any credential, presented any way: 202 exactly when
    it grants publish on the channel; else 401 or 403 (400 for a bad channel), the
    contract's JSON error, holding no token; a ticket is refused when used again."""
    assume(s.fits(credential))
    credential = minted(credential, presented.how, data)
    channel = data.draw(channels_for(credential, "publish"), label="channel")

    async def example() -> list[str]:
        async with client(secured) as http:
            made = await make(http, credential, int(time.time()))
            secrets = hidden(made)
            headers, query = request_parts(made, presented)
            headers["Content-Type"] = b"application/json"
            path = path_with(f"/channels/{s.quoted(channel)}/events", query)
            for used in (False, True):
                expected = outcome(made, presented, channel, "publish", 202, used=used)
                event(f"{made.kind} as {presented.how}: {expected.status} {expected.code or ''}")
                response = await within(
                    http.post(path, content=b'{"fuzz": true}', headers=headers), "the answer"
                )
                check_outcome(response, response.content, expected, secrets)
                if response.status_code == 202:
                    answer = valid_json(response.content, "the publish answer")
                    assert answer["channel"] == channel, answer
                    id_key(answer["id"])
                if presented.how != "ticket" or not is_channel(channel):
                    break
            return secrets

    secured.check(asyncio.run(example()))


def reads(protocols: list[str]) -> list[str]:
    return ["history", *(protocol for protocol in ("sse", "ndjson") if protocol in protocols)]


@given(presented=s.presentations, credential=s.credentials, data=st.data())
def test_subscribe_with_any_credential(
    secured: Server,
    protocols: list[str],
    presented: s.Presented,
    credential: s.Credential,
    data: st.DataObject,
) -> None:
    """The history, an SSE or an NDJSON stream with any credential: it opens (200) exactly
    when the credential grants subscribe on the channel; else the contract's refusal.
    A ticket opens one stream (or history) once."""
    assume(s.fits(credential))
    credential = minted(credential, presented.how, data)
    channel = data.draw(channels_for(credential, "subscribe"), label="channel")
    read = data.draw(st.sampled_from(reads(protocols)), label="read")
    tail = "events" if read == "history" else read

    async def example() -> list[str]:
        async with client(secured) as http:
            made = await make(http, credential, int(time.time()))
            secrets = hidden(made)
            headers, query = request_parts(made, presented)
            path = path_with(f"/channels/{s.quoted(channel)}/{tail}", query)
            for used in (False, True):
                expected = outcome(made, presented, channel, "subscribe", 200, used=used)
                event(f"{made.kind} as {presented.how}: {expected.status} {expected.code or ''}")
                async with http.stream("GET", path, headers=headers) as response:
                    if response.status_code == 200 and read != "history":
                        # An open stream: its head is the answer.
                        check_outcome(response, b"", expected, secrets)
                        assert media_type(response) in STREAM_TYPES, response.headers
                    else:
                        body = await within(response.aread(), "the answer")
                        check_outcome(response, body, expected, secrets)
                        if response.status_code == 200:
                            history = valid_json(body, "the history")
                            assert history["channel"] == channel, history
                if presented.how != "ticket" or not is_channel(channel):
                    break
            return secrets

    secured.check(asyncio.run(example()))


# --- WebSocket ---------------------------------------------------------------------------------

HANDSHAKES = ["auth", "auth", "auth", "auth", "bearer", "cookie", "ticket", "ticket", "none"]
# What an `auth` op carries in place of the credential's text, now and then.
ODD_TOKENS: list[Any] = [None, 1, "", [], {}, s.MISSING]


def same_subject(first: s.Credential, second: s.Credential) -> s.Credential:
    """`second`, naming the subject `first` names (a fresh token of the same holder)."""
    one, two = holder_of(first), holder_of(second)
    if not (isinstance(one, s.Signed) and isinstance(two, s.Signed)):
        return second
    if not (isinstance(one.claims, dict) and isinstance(two.claims, dict)):
        return second
    if "sub" not in one.claims:
        return second
    return dataclasses.replace(two, claims={**two.claims, "sub": one.claims["sub"]})


class Socket:
    """One socket's replies (by ref) and events, each checked as it arrives."""

    def __init__(self, ws: Any, secrets: list[str]) -> None:
        self.ws = ws
        self.secrets = secrets
        self.events: list[dict[str, Any]] = []
        self.unsolicited: list[dict[str, Any]] = []

    async def next(self) -> dict[str, Any]:
        text = await within(self.ws.recv(), "a message")
        never_shown(text, self.secrets, "a WebSocket message")
        return ws_message(text)

    async def reply(self, ref: str) -> dict[str, Any]:
        """The reply to the message with this ref; events and replies without one are kept."""
        while True:
            message = await self.next()
            if message.get("ref") == ref:
                return message
            if message["op"] in ("event", "reset"):
                self.events.append(message)
            else:
                assert "ref" not in message, (ref, message)
                self.unsolicited.append(message)

    async def refused(self, ref: str) -> None:
        """An `unauthorized` error echoing `ref`, then close 1008, and nothing else."""
        reply = await self.reply(ref)
        assert (reply["op"], reply.get("code")) == ("error", "unauthorized"), reply
        try:
            while True:
                message = await self.next()
                assert message["op"] in ("event", "reset"), f"after a failed auth: {message}"
        except ConnectionClosed as closed:
            code = None if closed.rcvd is None else closed.rcvd.code
            assert code == 1008, f"a failed auth closed with {code}, not 1008"


def auth_message(made: s.Made, value: Any, ref: str) -> str:
    message: dict[str, Any] = {"op": "auth", "ref": ref}
    if value is not s.MISSING:
        message["token"] = made.text if value is None else value
    return json.dumps(message)


def auth_outcome(made: s.Made, value: Any, current: Grants | None) -> Grants | None:
    """What an `auth` op grants (None: refused, close 1008)."""
    if value is not None:
        return None  # an odd token: no string, or an empty one
    try:
        grants = expected_grants(made, "bearer", time.time())
    except Refused:
        return None
    if current is not None and grants.subject != current.subject:
        return None
    return grants


async def authenticate(
    socket: Socket, made: s.Made, value: Any, ref: str, current: Grants | None, what: str
) -> Grants | None:
    """Send `auth` and check the answer: the grants it gives, None once refused (and closed)."""
    await socket.ws.send(auth_message(made, value, ref))
    grants = auth_outcome(made, value, current)
    event(f"{what}: {'refused' if grants is None else 'authenticated'}")
    if grants is None:
        await socket.refused(ref)
        return None
    await check_authenticated(socket, ref, grants)
    return grants


async def check_authenticated(socket: Socket, ref: str, grants: Grants) -> None:
    reply = await socket.reply(ref)
    expected = {"op": "authenticated", "subject": grants.subject, "expires": grants.expires}
    assert reply == {**expected, "ref": ref}, (reply, grants)


async def use_channel(socket: Socket, grants: Grants | None, channel: str) -> bool:
    """Subscribe and publish: each answered as the grants say; published to a channel
    it is subscribed to, the event comes back. Whether it is subscribed."""
    await socket.ws.send(json.dumps({"op": "subscribe", "channel": channel, "ref": "s"}))
    await socket.ws.send(
        json.dumps({"op": "publish", "channel": channel, "data": {"fz": 1}, "ref": "p"})
    )
    subscribed = await socket.reply("s")
    published = await socket.reply("p")
    for reply, right, ok in (
        (subscribed, "subscribe", "subscribed"),
        (published, "publish", "published"),
    ):
        if not is_channel(channel):
            expected_code: str | None = "bad_channel"
        elif grants is None:
            expected_code = "unauthorized"
        else:
            expected_code = None if grants.may(right, channel) else "forbidden"
        if expected_code is None:
            assert (reply["op"], reply.get("channel")) == (ok, channel), (reply, grants)
        else:
            assert (reply["op"], reply.get("code")) == ("error", expected_code), (reply, grants)
    event(f"subscribe: {subscribed.get('code', 'subscribed')}")
    event(f"publish: {published.get('code', 'published')}")
    if subscribed["op"] == "subscribed" and published["op"] == "published":
        event_id = published["id"]
        deadline = time.monotonic() + DEADLINE
        while not any(event.get("id") == event_id for event in socket.events):
            assert time.monotonic() < deadline, f"not delivered: {published}"
            message = await socket.next()
            if message["op"] in ("event", "reset"):
                socket.events.append(message)
    return bool(subscribed["op"] == "subscribed")


@dataclass(frozen=True)
class Handshake:
    """How a socket presents its first credential: `how` is auth (the op), none, or in
    the handshake: bearer, cookie, ticket; `expected` is its refusal, None if accepted."""

    how: str
    url: str
    headers: dict[str, str]
    expected: Outcome | None


def handshake_of(server: Server, made: s.Made, how: str, origin: str | None) -> Handshake:
    # In the handshake's headers only where a header can hold the credential as it is.
    if how in ("bearer", "cookie") and not exact(made.text):
        how = "auth"
    in_handshake = how in ("bearer", "cookie", "ticket")
    form = {"bearer": "Bearer {}", "cookie": "realtime_token={}"}.get(how, "{}")
    headers, query = request_parts(made, s.Presented(how if in_handshake else "none", form))
    # An Origin not listed is refused whatever the handshake carries; then its credentials.
    expected = None
    if origin is not None and origin.lower() != s.LISTED_ORIGIN:
        expected = Outcome(403, "origin_not_allowed")
    elif in_handshake:
        try:
            expected_grants(made, how, time.time())
        except Refused:
            expected = Outcome(401, "unauthorized")
    return Handshake(
        how,
        path_with(server.ws_url, query),
        {name: value.decode() for name, value in headers.items()},
        expected,
    )


async def converse(
    socket: Socket,
    made: s.Made,
    how: str,
    first_value: Any,
    fresh: s.Made | None,
    second_value: Any,
    channel: str,
) -> None:
    """Authenticate (unless the handshake did), use the channel, authenticate again."""
    grants: Grants | None = None
    if how in ("bearer", "cookie", "ticket"):
        grants = expected_grants(made, how, time.time())
    elif how == "auth":
        grants = await authenticate(socket, made, first_value, "a1", None, "auth")
        if grants is None:
            return
    subscribed = await use_channel(socket, grants, channel)
    if fresh is None:
        return
    renewed = await authenticate(socket, fresh, second_value, "a2", grants, "auth again")
    if renewed is None:
        return
    # A channel the fresh token no longer grants is left, and the socket is told.
    left = [message for message in socket.unsolicited if message["op"] == "unsubscribed"]
    if subscribed and not renewed.may("subscribe", channel):
        assert left == [{"op": "unsubscribed", "channel": channel}], socket.unsolicited
    else:
        assert not left, socket.unsolicited


@given(
    how=st.sampled_from(HANDSHAKES),
    origin=s.origins,
    first_value=s.weighted((5, st.none()), (1, st.sampled_from(ODD_TOKENS))),
    second_value=s.weighted((5, st.none()), (1, st.sampled_from(ODD_TOKENS))),
    first=s.credentials,
    second=st.none() | s.credentials,
    data=st.data(),
)
def test_websocket_auth(
    secured: Server,
    protocols: list[str],
    how: str,
    origin: str | None,
    first_value: Any,
    second_value: Any,
    first: s.Credential,
    second: s.Credential | None,
    data: st.DataObject,
) -> None:
    """A socket authenticates with any credential, in its handshake (bearer, cookie,
    ticket) or with `auth` (whose token may be no string), subscribes and publishes,
    and may send `auth` again: each answer is the one the credentials' grants give; a
    refused handshake is 401 or 403, a failed `auth` an `unauthorized` error and close
    1008; a fresh token must name the same subject, and channels it no longer grants
    are left; no message holds a token."""
    if "websocket" not in protocols:
        pytest.skip("this project serves no WebSocket")
    assume(s.fits(first) and (second is None or s.fits(second)))
    first = minted(first, how, data)
    right = data.draw(st.sampled_from(["subscribe", "publish"]), label="channel for")
    channel = data.draw(channels_for(first, right), label="channel")
    if second is not None and data.draw(st.booleans(), label="same subject"):
        second = same_subject(first, second)

    async def example() -> list[str]:
        now = int(time.time())
        async with client(secured) as http:
            made = await make(http, first, now)
            fresh = None if second is None else await make(http, second, now)
        secrets = hidden(made, fresh)
        handshake = handshake_of(secured, made, how, origin)
        expected = handshake.expected
        event(f"{made.kind} in {handshake.how}: {expected.status if expected else 'accepted'}")
        try:
            async with connect(
                handshake.url,
                origin=None if origin is None else Origin(origin),
                additional_headers=handshake.headers,
                max_size=None,
                ping_interval=None,
                open_timeout=DEADLINE,
                close_timeout=DEADLINE,
            ) as ws:
                assert expected is None, f"the handshake was accepted, expected {expected}"
                socket = Socket(ws, secrets)
                await converse(
                    socket, made, handshake.how, first_value, fresh, second_value, channel
                )
        except InvalidStatus as refused:
            answer = refused.response
            assert expected is not None, f"refused: {answer.status_code} {answer.body!r}"
            assert answer.status_code == expected.status, (expected, answer.status_code)
            body = bytes(answer.body or b"")
            never_shown(body, secrets, "the handshake's refusal")
            error = valid_json(body, "the handshake's refusal")
            assert error["error"] == expected.code, (expected, error)
        return secrets

    secured.check(asyncio.run(example()))


def test_the_oracle_reads_tokens_as_the_contract_does() -> None:
    """The oracle itself, on tokens whose meaning is known."""
    now = int(time.time())

    def made(**claims: Any) -> s.Made:
        base: dict[str, Any] = {"sub": "alice", "exp": s.FromNow(600)}
        return s.Signed(s.JWT_HEADER, {**base, **claims}).make(now)

    alice = expected_grants(made(realtime={"publish": ["user:{sub}", "room:*"]}), "bearer", now)
    assert alice.may("publish", "user:alice")
    assert alice.may("publish", "room:a")
    assert not alice.may("publish", "user:bob")
    assert not alice.may("subscribe", "room:a")
    star = expected_grants(made(sub="*", realtime={"subscribe": ["user:{sub}"]}), "bearer", now)
    assert not star.may("subscribe", "user:x")
    refused = [
        made(exp=s.FromNow(-60)),
        made(exp="9999999999"),
        made(exp=s.Raw("1" * 400)),
        made(sub=""),
        made(realtime={"publish": "*"}),
        made(realtime={"publish": ["x"] * 257}),
        made(typ="ticket", jti="t"),
        s.Signed({"alg": "none"}, {"sub": "a", "exp": s.FromNow(60)}, key="none").make(now),
        s.Signed(s.JWT_HEADER, {"sub": "a", "exp": s.FromNow(60)}, key="wrong").make(now),
    ]
    for token in refused:
        with pytest.raises(Refused):
            expected_grants(token, "bearer", now)
    with pytest.raises(Refused):
        expected_grants(made(), "ticket", now)
    assert expected_grants(made(typ="ticket", jti="t"), "ticket", now).subject == "alice"
