"""What hypothesis makes: JSON and JSON-like text, bodies, names, ids, headers, frames."""

from __future__ import annotations

import json
import string
import unicodedata
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

CHANNEL_REGEX = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}"

# --- JSON values and text --------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)


def json_values(max_leaves: int = 20) -> st.SearchStrategy[Any]:
    """Any JSON value a client may publish (no NaN, no infinity, shallow)."""
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=5)
            | st.dictionaries(st.text(max_size=10), children, max_size=5)
        ),
        max_leaves=max_leaves,
    )


def dumped(value: Any, ascii_only: bool, indent: int | None) -> str:
    return json.dumps(value, ensure_ascii=ascii_only, indent=indent)


json_texts = st.builds(dumped, json_values(), st.booleans(), st.none() | st.integers(0, 3))

# Text that Python's json module reads but that is not interoperable JSON, or that
# breaks parsers: overflowing exponents, NaN, deep nesting, lone surrogates, a BOM,
# huge numbers, trailing data.
NASTY_TEXTS = [
    "1e999",
    "-1e999",
    "[1e999]",
    '{"a": -1E400}',
    "1.5e308",
    "2e-999",
    "-0",
    "NaN",
    "-NaN",
    "Infinity",
    "-Infinity",
    '{"x": NaN}',
    "[Infinity]",
    '"\\ud800"',
    '"\\udfff"',
    '"\\uD83D"',
    '"a\\udc00b"',
    '{"\\ud800": 1}',
    '"\\ud83d\\ude00"',
    '"\\u0000"',
    '"\u2028\u2029"',
    '"\\u2028"',
    "\ufeff{}",
    "{} x",
    "{}{}",
    "[1,]",
    "{'a': 1}",
    "",
    " ",
    "\n",
    "nul",
    "1" * 4300,
    "1" * 4301,
    "-" + "9" * 5000,
    "0." + "1" * 5000,
    "1e" + "9" * 400,
    "[" * 64 + "]" * 64,
    "[" * 65 + "]" * 65,
    '{"a":' * 65 + "1" + "}" * 65,
    "[" * 30000 + "]" * 30000,
    "[" * 30000,
    '{"a":' * 10000 + "1" + "}" * 10000,
    '"' + "[" * 1000 + '"',
    '["' + "x" * 60000 + '"]',
    '"' + "x" * 70000 + '"',
]
nasty_texts = st.sampled_from(NASTY_TEXTS)


def splice(base: str, insert: str, at: int) -> str:
    at = at % (len(base) + 1)
    return base[:at] + insert + base[at:]


json_like_texts = st.one_of(
    json_texts,
    nasty_texts,
    st.text(max_size=200),
    st.text(alphabet='[]{}",:0123456789.eE+-\\u truefalsnNaIiy', max_size=60),
    st.builds(splice, json_texts, nasty_texts, st.integers(min_value=0)),
    st.builds(
        splice,
        json_texts,
        st.sampled_from(["\\ud800", "\\", '"', "1e999", "NaN", "\x00", "\ufeff"]),
        st.integers(min_value=0),
    ),
)


def to_bytes(text: str, encoding: str) -> bytes:
    # "surrogatepass" writes a lone surrogate as the bytes UTF-8 forbids.
    return text.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")


bodies = st.one_of(
    st.builds(to_bytes, json_like_texts, st.just("utf-8")),
    st.builds(to_bytes, json_like_texts, st.sampled_from(["utf-16", "utf-32", "latin-1"])),
    st.binary(max_size=300),
    st.builds(lambda text, junk: text.encode() + junk, json_texts, st.binary(min_size=1)),
    # Lone surrogates and bytes that are not UTF-8, raw.
    st.builds(
        lambda text, at: splice(text, "\ud800", at).encode("utf-8", "surrogatepass"),
        json_texts,
        st.integers(min_value=0),
    ),
    st.builds(
        lambda text, at: splice(text, "\udcff", at).encode("utf-8", "surrogateescape"),
        json_texts,
        st.integers(min_value=0),
    ),
)

# --- HTTP ------------------------------------------------------------------------------------

CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json;charset=latin-1",
    "APPLICATION/JSON",
    "application/json ;charset=utf-8",
    "application/vnd.api+json",
    "application/ld+json; profile=x",
    "application/jsonx",
    "application/json-patch+json",
    "text/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "*/*",
    ";",
    "",
]
HEADER_VALUE_CHARS = st.characters(
    min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"
)


def header_value(text: str) -> bytes:
    return text.strip().encode("latin-1")


def as_header(text: str) -> bytes:
    """Any text as a header value HTTP allows: UTF-8, no control characters, no
    surrounding whitespace."""
    kept = "".join(char for char in text if char == "\t" or unicodedata.category(char) != "Cc")
    return kept.strip(" \t").encode("utf-8", "ignore")


header_values = st.builds(header_value, st.text(HEADER_VALUE_CHARS, max_size=100)) | st.builds(
    lambda text: text.strip().encode(),
    st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=50),
)
content_types = st.none() | st.sampled_from(CONTENT_TYPES).map(str.encode) | header_values

TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
# Headers the client itself must own for the connection to stay HTTP/1.1 it can read.
CLIENT_OWNED = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "expect",
    "te",
    "trailer",
    "keep-alive",
    "content-type",
}
COMMON_HEADERS = [
    "Accept",
    "Accept-Encoding",
    "Authorization",
    "Cookie",
    "Origin",
    "Last-Event-ID",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Real-IP",
    "Forwarded",
    "Content-Encoding",
    "Range",
    "If-None-Match",
    "Cache-Control",
    "Sec-WebSocket-Version",
    "Referer",
    "User-Agent",
]
header_names = st.sampled_from(COMMON_HEADERS) | st.text(TOKEN_CHARS, min_size=1, max_size=30)
extra_headers = st.dictionaries(
    header_names.filter(lambda name: name.lower() not in CLIENT_OWNED),
    header_values,
    max_size=4,
)

# --- channels, ids, query values -------------------------------------------------------------

valid_channels = st.from_regex(CHANNEL_REGEX, fullmatch=True)
any_channels = (
    valid_channels
    | st.text(max_size=140)
    | st.sampled_from(
        ["", "-x", ".", "..", "a/b", "a b", "x" * 129, "ü", "a\x00b", "a%b", "a?b", "a#b"]
    )
)


def quoted(channel: str) -> str:
    """The channel as one path segment (a lone surrogate cannot be quoted: dropped)."""
    return quote(channel.encode("utf-8", "ignore"), safe="")


# Percent-escapes that decode to something a server may choke on: not UTF-8, NUL,
# a slash, a dot segment.
RAW_ESCAPES = ["%ff", "%c3%28", "%ed%a0%80", "%00", "%2f", "%2e%2e", "%", "%g1", "%e2%80%a8"]
raw_segments = st.lists(
    st.sampled_from(RAW_ESCAPES) | st.text("abc.-_:", min_size=1, max_size=3),
    min_size=1,
    max_size=4,
).map("".join)
path_segments = st.builds(quoted, any_channels) | raw_segments

id_texts = st.one_of(
    st.integers(min_value=-5, max_value=10**30).map(str),
    st.text(max_size=30),
    st.text(string.digits + "-", max_size=25),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1-",
            "-",
            "1-2",
            "0-0",
            "1.5",
            "1e3",
            "¹",
            "\uff11\uff12",
            "٣",
            "0x10",
            "+1",
            " 1",
            "1 ",
            "9" * 400,
            "18446744073709551616",
            "1-18446744073709551616",
        ]
    ),
)
query_values = id_texts | st.just(None)


def query_part(name: str, value: str | None) -> str:
    return "" if value is None else f"{name}={quote(value.encode('utf-8', 'ignore'), safe='')}"


raw_query_values = st.lists(
    st.sampled_from(RAW_ESCAPES) | st.text("0123456789", min_size=1), min_size=1, max_size=3
).map("".join)

# --- WebSocket -------------------------------------------------------------------------------

OPS = ["subscribe", "unsubscribe", "publish", "ping"]
ws_ops = st.sampled_from(OPS) | json_values(max_leaves=3)
ws_channel_values = (
    st.sampled_from(["fz-a", "fz-b", "fz.c"]) | valid_channels | json_values(max_leaves=3)
)
ws_ids = id_texts | json_values(max_leaves=3)
ws_messages = st.fixed_dictionaries(
    {},
    optional={
        "op": ws_ops,
        "channel": ws_channel_values,
        "data": json_values(),
        "last_event_id": ws_ids,
        # Mostly refs the contract takes (short strings, safe integers), some it refuses.
        "ref": st.one_of(
            st.text(max_size=20),
            st.integers(-(2**53), 2**53),
            st.text(min_size=120, max_size=140),
            json_values(max_leaves=4),
        ),
        "extra": json_values(max_leaves=3),
    },
)
