"""Access: with REALTIME_SECRET_KEY set, every channel needs a token that grants it.

Tokens are minted here with PyJWT and the server's secret, as any client or
back-end service would; every way a client presents one is tried over real
connections, and so is every way of getting it wrong.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from .conftest import COMMAND, PROTOCOLS, Server, StartServer
from .helpers import (
    DEADLINE,
    TIMEOUT,
    WSSession,
    assert_error,
    json_body,
    open_ndjson,
    open_sse,
    unique_channel,
)

SIGNING_KEY = "test-secret-that-is-long-enough-for-hs256"
PUBLISH_KEY = "test-publish-key-that-is-long-enough-too"
LISTED_ORIGIN = "http://app.example"
STREAMS = [protocol for protocol in PROTOCOLS if protocol != "websocket"]
needs_websocket = pytest.mark.skipif(
    "websocket" not in PROTOCOLS, reason="the project serves no WebSocket"
)
needs_streams = pytest.mark.skipif(not STREAMS, reason="the project serves no HTTP stream")


def token(
    subject: str = "alice",
    *,
    subscribe: list[str] | None = None,
    publish: list[str] | None = None,
    seconds: float = 600,
    key: str = SIGNING_KEY,
    **claims: Any,
) -> str:
    now = int(time.time())
    payload = {
        "sub": subject,
        "iat": now,
        "exp": now + seconds,
        "realtime": {"subscribe": subscribe or [], "publish": publish or []},
        **claims,
    }
    return jwt.encode(payload, key, algorithm="HS256")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture(scope="module")
def secured() -> Iterator[Server]:
    """A server that needs tokens, shared by the tests of this module."""
    running = Server(
        {
            "REALTIME_SECRET_KEY": SIGNING_KEY,
            "REALTIME_PUBLISH_KEY": PUBLISH_KEY,
            "REALTIME_ALLOWED_ORIGINS": LISTED_ORIGIN,
            "REALTIME_HEARTBEAT_SECONDS": "1",
            "REALTIME_AUTH_TIMEOUT_SECONDS": "1",
        }
    )
    yield running
    running.stop()


def client(server: Server, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=TIMEOUT, headers=headers)


def async_client(server: Server, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT, headers=headers)


def publish_as(server: Server, credential: str, channel: str, data: Any) -> httpx.Response:
    with client(server, bearer(credential)) as http:
        return http.post(
            f"/channels/{channel}/events",
            content=json_body(data),
            headers={"Content-Type": "application/json"},
        )


def published_id(server: Server, channel: str, data: Any) -> str:
    response = publish_as(server, PUBLISH_KEY, channel, data)
    assert response.status_code == 202, response.text
    event_id: str = response.json()["id"]
    return event_id


def assert_unauthorized(response: httpx.Response, *, invalid_token: bool) -> None:
    assert_error(response, 401, "unauthorized")
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), response.headers
    assert ('error="invalid_token"' in challenge) is invalid_token, challenge


# --- open without a secret ---------------------------------------------------------------------


def test_without_a_secret_anyone_may_publish_and_says_so(server: Server) -> None:
    with client(server) as http:
        channel = unique_channel()
        response = http.post(
            f"/channels/{channel}/events",
            content=b"1",
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 202, response.text
        assert_error(http.post("/auth/ticket"), 404, "auth_off")
    assert "REALTIME_SECRET_KEY is not set" in server.output()


# --- HTTP: who may publish and read ------------------------------------------------------------


def test_anonymous_clients_may_neither_publish_nor_read(secured: Server) -> None:
    channel = unique_channel()
    with client(secured) as http:
        response = http.post(
            f"/channels/{channel}/events",
            content=b"1",
            headers={"Content-Type": "application/json"},
        )
        assert_unauthorized(response, invalid_token=False)
        assert_unauthorized(http.get(f"/channels/{channel}/events"), invalid_token=False)
        for protocol in STREAMS:
            response = http.get(f"/channels/{channel}/{protocol}")
            assert_unauthorized(response, invalid_token=False)


def test_a_token_does_exactly_what_its_grants_say(secured: Server) -> None:
    holder = token("alice", subscribe=["room:*", "user:{sub}"], publish=["room:a"])
    assert publish_as(secured, holder, "room:a", 1).status_code == 202
    assert_error(publish_as(secured, holder, "room:b", 1), 403, "forbidden")
    assert_error(publish_as(secured, holder, "user:alice", 1), 403, "forbidden")
    with client(secured, bearer(holder)) as http:
        assert http.get("/channels/room:b/events").status_code == 200
        assert http.get("/channels/user:alice/events").status_code == 200
        assert_error(http.get("/channels/user:bob/events"), 403, "forbidden")
        assert_error(http.get("/channels/lobby/events"), 403, "forbidden")
        for protocol in STREAMS:
            assert_error(http.get(f"/channels/lobby/{protocol}"), 403, "forbidden")


@pytest.mark.parametrize(
    "credential",
    [
        pytest.param(token(key="another-secret-that-is-long-enough-to-sign"), id="forged"),
        pytest.param(token(seconds=-60), id="expired"),
        pytest.param(token(typ="ticket", jti="x"), id="ticket-as-bearer"),
        pytest.param(
            jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, "", algorithm="none"),
            id="unsigned",
        ),
        pytest.param("not-a-token", id="garbage"),
        pytest.param(token(subject=""), id="no-subject"),
    ],
)
def test_bad_tokens_are_401_and_never_echoed(secured: Server, credential: str) -> None:
    response = publish_as(secured, credential, "room:a", 1)
    assert_unauthorized(response, invalid_token=True)
    assert credential not in response.text
    assert credential not in secured.output()


def test_only_bearer_tokens_are_read_from_the_authorization_header(secured: Server) -> None:
    with client(secured, {"Authorization": f"Basic {token()}"}) as http:
        assert_unauthorized(http.get("/channels/room:a/events"), invalid_token=True)


def test_the_publish_key_publishes_anywhere_and_reads_nothing(secured: Server) -> None:
    response = publish_as(secured, PUBLISH_KEY, unique_channel(), {"from": "a service"})
    assert response.status_code == 202, response.text
    with client(secured, bearer(PUBLISH_KEY)) as http:
        assert_error(http.get(f"/channels/{unique_channel()}/events"), 403, "forbidden")


def test_minting_for_a_logged_in_user_needs_a_login(secured: Server) -> None:
    with client(secured) as http:
        assert_unauthorized(http.post("/auth/token"), invalid_token=False)


def test_the_token_command_mints_what_the_server_takes(secured: Server) -> None:
    script = Path(sys.executable).with_name(COMMAND)
    result = subprocess.run(
        [str(script), "token", "carol", "--subscribe", "news:*", "--publish", "news:carol"],
        env={"REALTIME_SECRET_KEY": SIGNING_KEY, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    minted = result.stdout.strip()
    assert publish_as(secured, minted, "news:carol", 1).status_code == 202
    assert_error(publish_as(secured, minted, "news:dave", 1), 403, "forbidden")


# --- an identity provider's tokens ------------------------------------------------------------

ISSUER = "https://id.example"
AUDIENCE = "realtime-tests"


@pytest.fixture(scope="module")
def identity_provider() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """A key set served over HTTP, as an identity provider publishes it (JWKS)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key())) | {"kid": "k1", "use": "sig"}
    body = json.dumps({"keys": [jwk]}).encode()

    class KeySet(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    provider = ThreadingHTTPServer(("127.0.0.1", 0), KeySet)
    threading.Thread(target=provider.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{provider.server_port}/keys", key
    provider.shutdown()


def test_an_identity_providers_tokens_are_checked_against_its_keys(
    start_server: StartServer, identity_provider: tuple[str, rsa.RSAPrivateKey]
) -> None:
    url, key = identity_provider
    server = start_server(
        secret_key=SIGNING_KEY, jwks_url=url, token_issuer=ISSUER, token_audience=AUDIENCE
    )

    def signed(signer: rsa.RSAPrivateKey = key, **claims: Any) -> str:
        payload = {
            "sub": "erin",
            "iss": ISSUER,
            "aud": AUDIENCE,
            "exp": int(time.time()) + 600,
            "realtime": {"publish": ["room:*"]},
        } | claims
        return jwt.encode(payload, signer, algorithm="RS256", headers={"kid": "k1"})

    assert publish_as(server, signed(), "room:p", 1).status_code == 202
    assert_error(publish_as(server, signed(), "lobby", 1), 403, "forbidden")
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for refused in (
        signed(aud="another-app"),
        signed(iss="https://other.example"),
        signed(stranger),
    ):
        assert_unauthorized(publish_as(server, refused, "room:p", 1), invalid_token=True)


# --- cookies and tickets -----------------------------------------------------------------------


def test_a_session_keeps_the_token_in_an_httponly_cookie(secured: Server) -> None:
    holder = token(subscribe=["room:*"], seconds=600)
    with client(secured) as http:
        response = http.post("/auth/session", headers=bearer(holder))
        assert response.status_code == 200, response.text
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("realtime_token="), cookie
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in attributes, cookie
        assert "samesite=strict" in attributes, cookie
        assert any(part.startswith("max-age=") for part in attributes), cookie
        assert http.get("/channels/room:a/events").status_code == 200
        # A page elsewhere may not ride on the cookie.
        foreign = http.get("/channels/room:a/events", headers={"Origin": "http://evil.example"})
        assert_error(foreign, 403, "origin_not_allowed")
        listed = http.get("/channels/room:a/events", headers={"Origin": LISTED_ORIGIN})
        assert listed.status_code == 200
        assert http.delete("/auth/session").status_code == 200
        assert_unauthorized(http.get("/channels/room:a/events"), invalid_token=False)


def test_a_session_needs_a_valid_bearer_token(secured: Server) -> None:
    with client(secured) as http:
        assert_unauthorized(http.post("/auth/session"), invalid_token=False)
        response = http.post("/auth/session", headers=bearer(token(seconds=-5)))
        assert_unauthorized(response, invalid_token=True)
        assert "set-cookie" not in response.headers


@needs_streams
@pytest.mark.parametrize("protocol", STREAMS)
def test_a_ticket_opens_one_stream_once(secured: Server, protocol: str) -> None:
    holder = token(subscribe=["room:*"])
    with client(secured, bearer(holder)) as http:
        response = http.post("/auth/ticket")
        assert response.status_code == 200, response.text
        ticket = response.json()["ticket"]
    with client(secured) as http:
        url = f"/channels/room:t/{protocol}"
        with http.stream("GET", url, params={"ticket": ticket}) as opened:
            assert opened.status_code == 200
        assert_unauthorized(http.get(url, params={"ticket": ticket}), invalid_token=True)
        # A token of any other kind never travels in a URL.
        assert_unauthorized(http.get(url, params={"ticket": holder}), invalid_token=True)
        stale = token(subscribe=["room:*"], seconds=-1, typ="ticket", jti="stale")
        assert_unauthorized(http.get(url, params={"ticket": stale}), invalid_token=True)
    assert ticket not in secured.output()


def test_tickets_need_credentials(secured: Server) -> None:
    with client(secured) as http:
        assert_unauthorized(http.post("/auth/ticket"), invalid_token=False)


# --- expiry on open streams --------------------------------------------------------------------


@needs_streams
@pytest.mark.parametrize("protocol", STREAMS)
def test_a_stream_ends_when_its_token_expires_and_resumes_without_a_gap(
    secured: Server, protocol: str
) -> None:
    async def scenario() -> None:
        channel = unique_channel("room:")
        short = token(subscribe=["room:*"], seconds=3)
        async with async_client(secured, bearer(short)) as http:
            if protocol == "sse":
                async with open_sse(http, channel) as sse:
                    first = published_id(secured, channel, 1)
                    frame = await sse.next_event()
                    assert frame.id == first
                    ending = await sse.rest()
                assert [frame.names for frame in ending] == [["event", "data"]], ending
                assert ending[-1].event == "expired"
                assert json.loads(ending[-1].data or "")["error"] == "token_expired"
            else:
                async with open_ndjson(http, channel) as ndjson:
                    first = published_id(secured, channel, 1)
                    assert (await ndjson.next_event())["id"] == first
                    ending_lines = await ndjson.rest()
                assert [line.get("op") for line in ending_lines] == ["expired"], ending_lines
        missed = published_id(secured, channel, 2)
        async with async_client(secured, bearer(token(subscribe=["room:*"]))) as http:
            if protocol == "sse":
                async with open_sse(http, channel, last_event_id=first) as sse:
                    assert (await sse.next_event()).id == missed
            else:
                async with open_ndjson(http, channel, last_event_id=first) as ndjson:
                    assert (await ndjson.next_event())["id"] == missed

    asyncio.run(scenario())


# --- WebSocket ---------------------------------------------------------------------------------


def ws(server: Server, headers: dict[str, str] | None = None) -> connect:
    return connect(
        server.ws_url,
        additional_headers=headers,
        ping_interval=None,
        open_timeout=DEADLINE,
        close_timeout=DEADLINE,
    )


@needs_websocket
def test_a_socket_must_authenticate_first_and_in_time(secured: Server) -> None:
    async def scenario() -> None:
        async with ws(secured) as socket:
            session = WSSession(socket)
            reply = await session.request({"op": "subscribe", "channel": "room:a"})
            assert (reply["op"], reply.get("code")) == ("error", "unauthorized"), reply
            messages, code = await session.until_closed()
        assert code == 1008
        assert [message.get("code") for message in messages] == ["unauthorized"], messages

    asyncio.run(scenario())


@needs_websocket
def test_a_socket_authenticates_with_its_first_message(secured: Server) -> None:
    async def scenario() -> None:
        channel = unique_channel("room:")
        async with ws(secured) as socket:
            session = WSSession(socket)
            reply = await session.request({"op": "auth", "token": token(subscribe=["room:*"])})
            assert (reply["op"], reply.get("subject")) == ("authenticated", "alice"), reply
            await session.subscribe(channel)
            forbidden = await session.request({"op": "subscribe", "channel": "lobby"})
            assert (forbidden["op"], forbidden.get("code")) == ("error", "forbidden"), forbidden
            denied = await session.request({"op": "publish", "channel": channel, "data": 1})
            assert (denied["op"], denied.get("code")) == ("error", "forbidden"), denied
            event_id = published_id(secured, channel, "hello")
            event = await session.next_event()
            assert (event["id"], event["data"]) == (event_id, "hello")

    asyncio.run(scenario())


@needs_websocket
def test_a_failed_auth_closes_the_socket_with_a_policy_close(secured: Server) -> None:
    async def scenario() -> None:
        forged = token(key="another-secret-that-is-long-enough-to-sign")
        async with ws(secured) as socket:
            session = WSSession(socket)
            await session.send({"op": "auth", "token": forged, "ref": 1})
            messages, code = await session.until_closed()
        assert code == 1008
        assert [(message["op"], message.get("code")) for message in messages] == [
            ("error", "unauthorized")
        ], messages
        assert forged not in secured.output()

    asyncio.run(scenario())


@needs_websocket
def test_a_handshake_with_credentials_is_authenticated_or_refused(secured: Server) -> None:
    async def scenario() -> None:
        async with ws(secured, bearer(token(subscribe=["room:*"]))) as socket:
            await WSSession(socket).subscribe("room:h")
        with client(secured, bearer(token(subscribe=["room:*"]))) as http:
            ticket = http.post("/auth/ticket").json()["ticket"]
        async with connect(
            f"{secured.ws_url}?ticket={ticket}", ping_interval=None, open_timeout=DEADLINE
        ) as socket:
            await WSSession(socket).subscribe("room:t")
        # Servers that log each handshake with its URL must not keep the ticket.
        assert ticket not in secured.output()
        with pytest.raises(InvalidStatus) as refused:
            async with ws(secured, bearer(token(seconds=-1))):
                pass
        assert refused.value.response.status_code == 401

    asyncio.run(scenario())


@needs_websocket
def test_a_fresh_token_keeps_the_subscriptions_and_an_old_one_expires(
    secured: Server,
) -> None:
    async def scenario() -> None:
        channel = unique_channel("room:")
        async with ws(secured) as socket:
            session = WSSession(socket)
            await session.request({"op": "auth", "token": token(subscribe=["room:*"], seconds=2)})
            await session.subscribe(channel)
            fresh = await session.request({"op": "auth", "token": token(subscribe=["room:*"])})
            assert fresh["op"] == "authenticated", fresh
            # The first token's expiry passes while the socket stays open.
            await asyncio.sleep(3)
            event_id = published_id(secured, channel, "after")
            assert (await session.next_event())["id"] == event_id
            other = await session.request({"op": "auth", "token": token("mallory")})
            assert (other["op"], other.get("code")) == ("error", "unauthorized"), other
        async with ws(secured) as socket:
            session = WSSession(socket)
            await session.request({"op": "auth", "token": token(subscribe=["room:*"], seconds=2)})
            await session.subscribe(channel)
            messages, code = await session.until_closed()
        assert code == 1008
        assert [message.get("code") for message in messages] == ["token_expired"], messages

    asyncio.run(scenario())


# --- origins -----------------------------------------------------------------------------------


def test_cors_preflights_and_answers_follow_the_allowed_origins(secured: Server) -> None:
    with client(secured) as http:
        preflight = http.options(
            "/channels/room:a/events",
            headers={
                "Origin": LISTED_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204, preflight.text
        assert preflight.headers["access-control-allow-origin"] == LISTED_ORIGIN
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        foreign = http.options(
            "/channels/room:a/events",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert_error(foreign, 403, "origin_not_allowed")
        assert "access-control-allow-origin" not in foreign.headers
        answer = http.get(
            "/channels/room:a/events",
            headers={"Origin": LISTED_ORIGIN, **bearer(token(subscribe=["room:*"]))},
        )
        assert answer.headers["access-control-allow-origin"] == LISTED_ORIGIN
        refusal = http.get("/channels/room:a/events", headers={"Origin": LISTED_ORIGIN})
        assert refusal.status_code == 401
        assert refusal.headers["access-control-allow-origin"] == LISTED_ORIGIN


def test_any_origin_is_never_allowed_credentials(start_server: StartServer) -> None:
    server = start_server(allowed_origins="*")
    with client(server) as http:
        answer = http.get("/channels/any/events", headers={"Origin": "http://anywhere.example"})
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in answer.headers


@needs_websocket
def test_a_rebound_name_is_not_the_apps_own_origin(server: Server) -> None:
    async def scenario() -> None:
        # A page on evil.example whose name now points at this machine: the browser
        # connects here, and sends the page's own name as the Host and the Origin.
        rebound = f"evil.example:{server.port}"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                f"ws://{rebound}/ws",
                host="127.0.0.1",
                port=server.port,
                origin=Origin(f"http://{rebound}"),
                open_timeout=DEADLINE,
            ):
                pass
        assert refused.value.response.status_code == 403
        own = f"http://127.0.0.1:{server.port}"
        async with connect(server.ws_url, origin=Origin(own), open_timeout=DEADLINE) as socket:
            await WSSession(socket).ping()

    asyncio.run(scenario())


def test_pages_and_answers_carry_security_headers(server: Server) -> None:
    with client(server) as http:
        page = http.get("/")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy, policy
        assert "frame-ancestors 'none'" in policy, policy
        assert "unsafe-inline" not in policy
        for answer in (page, http.get("/healthz"), http.get("/channels/bad name/events")):
            assert answer.headers["x-content-type-options"] == "nosniff", answer.url
            assert answer.headers["referrer-policy"] == "no-referrer", answer.url


# --- production mode ---------------------------------------------------------------------------


def start_up(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name(COMMAND)
    return subprocess.run(
        [str(script), "serve", "--port", "0"],
        env={"PATH": "", **env},
        capture_output=True,
        text=True,
        timeout=DEADLINE * 2,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REALTIME_ENVIRONMENT": "production"}, "REALTIME_SECRET_KEY"),
        (
            {"REALTIME_ENVIRONMENT": "production", "REALTIME_SECRET_KEY": SIGNING_KEY},
            "REALTIME_ALLOWED_ORIGINS",
        ),
        ({"REALTIME_SECRET_KEY": "short"}, "REALTIME_SECRET_KEY"),
        ({"REALTIME_ENVIRONMENT": "staging"}, "REALTIME_ENVIRONMENT"),
        (
            {"REALTIME_SECRET_KEY": SIGNING_KEY, "REALTIME_JWKS_URL": "https://id.example/keys"},
            "REALTIME_JWKS_URL",
        ),
    ],
)
def test_production_refuses_to_start_open(env: dict[str, str], named: str) -> None:
    result = start_up(env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stderr}"
    assert len(lines) == 1, result.stderr
    assert named in lines[0], result.stderr
    assert SIGNING_KEY not in result.stderr
