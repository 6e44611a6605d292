"""WebSocket text and binary frames, op sequences, and frames no client library would send."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import time
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from . import strategies as s
from .checks import DEADLINE, valid_json, within
from .conftest import Server
from .listeners import ws_connect, ws_message

MAX_MESSAGE_BYTES = 65536
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_TOO_BIG = 1009
END = "fuzz-end"


@pytest.fixture(autouse=True)
def websocket_served(protocols: list[str]) -> None:
    if "websocket" not in protocols:
        pytest.skip("this project serves no WebSocket")


def no_surrogates(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


frames = st.one_of(
    s.ws_messages.map(lambda message: ("message", message)),
    s.ws_messages.map(lambda message: ("message", message)),
    s.ws_messages.map(lambda message: ("message", message)),
    s.json_like_texts.filter(no_surrogates).map(lambda text: ("text", text)),
)
rare_frames = st.one_of(
    st.binary(max_size=100).map(lambda data: ("binary", data)),
    st.just(("big", MAX_MESSAGE_BYTES)),
)
sequences = st.lists(frames | rare_frames, max_size=8) | st.lists(frames, min_size=1, max_size=12)


@given(sequence=sequences)
def test_websocket_messages(server: Server, sequence: list[tuple[str, Any]]) -> None:
    """Any text frames, binary frames and op sequences on one socket.

    Every text frame gets exactly one reply, in order, echoing its ref; every
    message is a JSON object of the contract; an event published to a channel
    the socket is subscribed to comes back with the data sent; the socket stays
    open until a binary frame (close 1003) or one over the size limit (1009)."""

    async def example() -> None:
        async with ws_connect(server) as ws:
            sent: list[Any] = []  # what each reply answers: a message (dict) or raw text
            expected_close = None
            for kind, value in sequence:
                if kind == "binary":
                    await ws.send(value)
                    expected_close = CLOSE_UNSUPPORTED_DATA
                    break
                if kind == "big":  # made here: a 64 KiB example is slow to print
                    text = json.dumps({"op": "ping", "ref": "x" * value})
                elif kind == "message":
                    text = json.dumps(value)
                else:
                    text = value
                await ws.send(text)
                if len(text.encode()) > MAX_MESSAGE_BYTES:
                    expected_close = CLOSE_TOO_BIG
                    break
                sent.append(value)
            if expected_close is None:
                await ws.send(json.dumps({"op": "ping", "ref": END}))
                sent.append({"op": "ping", "ref": END})
            replies: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            try:
                while True:
                    message = ws_message(await within(ws.recv(), "a reply or the close"))
                    if message["op"] in ("event", "reset"):
                        events.append(message)
                        continue
                    replies.append(message)
                    if message.get("ref") == END and expected_close is None:
                        break
            except ConnectionClosed as closed:
                code = None if closed.rcvd is None else closed.rcvd.code
                assert expected_close is not None, f"closed ({code}) after {replies}"
                assert code == expected_close, (code, expected_close)
                return
            assert len(replies) == len(sent), (replies, sent)
            expected = check_replies(sent, replies)
            await check_delivered(ws, expected, events)

    asyncio.run(example())
    server.check()


MAX_REF_LENGTH = 128
MAX_SAFE_INTEGER = 2**53 - 1


def is_valid_ref(ref: Any) -> bool:
    """What the contract takes as a ref: a short string, or an integer JSON carries exactly."""
    if isinstance(ref, str):
        return len(ref) <= MAX_REF_LENGTH
    return type(ref) is int and abs(ref) <= MAX_SAFE_INTEGER


REPLIES = {
    "subscribe": "subscribed",
    "unsubscribe": "unsubscribed",
    "publish": "published",
    "ping": "pong",
    "auth": "authenticated",
}


def check_replies(sent: list[Any], replies: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """Each reply against the message it answers; the events this socket must get.

    A message hypothesis made is a dict; raw text is a str, taken for the message
    it parses as when the server did not refuse it."""
    subscribed: set[str] = set()
    expected: dict[tuple[str, str], Any] = {}
    for answered, reply in zip(sent, replies, strict=True):
        op = reply["op"]
        message = answered
        if isinstance(answered, str):
            if op == "error":
                continue
            message = valid_json(answered, f"a text frame answered {reply}")
            assert isinstance(message, dict), (answered, reply)
        ref = message.get("ref")
        if ref is None:
            assert "ref" not in reply, (message, reply)
        elif not is_valid_ref(ref):
            # Refs queue with their replies, so they are short; a bad one is not echoed.
            assert (op, reply.get("code")) == ("error", "bad_ref"), (message, reply)
            assert "ref" not in reply, (message, reply)
            continue
        else:
            assert reply.get("ref") == ref, (message, reply)
        if op == "error":
            continue
        asked = message.get("op")
        assert isinstance(asked, str), (message, reply)
        assert REPLIES.get(asked) == op, (message, reply)
        # The open server (no secret) authenticates anyone, whatever the token.
        assert op != "authenticated" or (reply["subject"], reply["expires"]) == ("anonymous", None)
        if op in ("pong", "authenticated"):
            continue
        assert reply.get("channel") == message["channel"], (message, reply)
        if op == "subscribed":
            subscribed.add(message["channel"])
        elif op == "unsubscribed":
            subscribed.discard(message["channel"])
        else:
            event_id = reply.get("id")
            assert isinstance(event_id, str), reply
            if message["channel"] in subscribed:
                expected[message["channel"], event_id] = message["data"]
    return expected


async def check_delivered(
    ws: Any, expected: dict[tuple[str, str], Any], events: list[dict[str, Any]]
) -> None:
    """Every event this socket published to a channel it was subscribed to comes back."""
    missing = dict(expected)
    deadline = time.monotonic() + DEADLINE
    while True:
        for event in events:
            key = (event.get("channel"), event.get("id"))
            if key in missing:
                assert event["data"] == missing.pop(key), (event, expected)
        events.clear()
        if not missing:
            return
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"not delivered: {missing}"
        message = ws_message(await within(ws.recv(), "the events published", remaining))
        if message["op"] == "event":
            events.append(message)


# --- raw frames --------------------------------------------------------------------------------


def frame(fin: bool, rsv: int, opcode: int, masked: bool, payload: bytes) -> bytes:
    """One frame as given: any opcode, reserved bits, unmasked, fragments; an honest length."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head = struct.pack("!BB", first, mask_bit | length)
    elif length < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


payloads = (
    st.binary(max_size=200)
    | s.json_texts.map(str.encode)
    | st.sampled_from([b"\xff\xfe", b"\xed\xa0\x80", b'{"op":"ping"}', b"\x03\xe8", b"\x00"])
)
raw_frames = st.builds(
    frame,
    fin=st.booleans() | st.just(True),
    rsv=st.just(0) | st.integers(0, 7),
    opcode=st.sampled_from([0x0, 0x1, 0x2, 0x8, 0x9, 0xA]) | st.integers(0, 15),
    masked=st.just(True) | st.booleans(),
    payload=payloads,
)
CLOSE = frame(True, 0, 0x8, True, struct.pack("!H", 1000))


def handshake(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    sock.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"closed during the handshake: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:300]
    return sock


@given(raw=st.lists(raw_frames, max_size=5))
# Always tried: a text frame that is not UTF-8 (close 1007), alone and after another.
@example(raw=[frame(True, 0, 0x1, True, b"\x80")])
@example(raw=[frame(True, 0, 0x1, True, b""), frame(True, 0, 0x1, True, b"\xed\xa0\x80")])
def test_websocket_raw_frames(server: Server, raw: list[bytes]) -> None:
    """Frames with any opcode, reserved bits, fragmentation, masking and payload, then a
    close: the server ends the connection within the deadline, and lives on."""
    sock = handshake(server)
    try:
        try:
            sock.sendall(b"".join(raw) + CLOSE)
        except (BrokenPipeError, ConnectionResetError):
            return  # it already hung up
        deadline = time.monotonic() + DEADLINE
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                if not sock.recv(65536):
                    break
            except ConnectionResetError:
                break
            except TimeoutError:
                raise AssertionError(
                    f"hang: the connection was still open {DEADLINE} s after a close frame"
                ) from None
    finally:
        sock.close()
    server.check()
